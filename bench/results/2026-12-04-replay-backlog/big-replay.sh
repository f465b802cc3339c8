cd /work/main
pkill -f "bench/servers/bridge.mjs"; sleep 1
(node bench/servers/bridge.mjs > /tmp/srv.log 2>/tmp/srv.err &); sleep 2
SP=$(head -1 /tmp/srv.log | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);console.log(o.port+" "+o.pid)})'); PORT=${SP% *}; PID=${SP#* }
ASSIGN=$(node -e 'console.log(encodeURIComponent(JSON.stringify([{topic:"big-1p",partition:0,offset:0}])))')
(while kill -0 $PID 2>/dev/null; do grep VmRSS /proc/$PID/status | awk '{print $2}'; sleep 0.25; done > /tmp/rss.txt &)
for parse in count count json; do node bench/client.mjs "{\"mode\":\"replay\",\"source\":\"http\",\"format\":\"sse\",\"parse\":\"$parse\",\"url\":\"http://127.0.0.1:$PORT/stream?assign=$ASSIGN\",\"expect\":1000000,\"timeoutMs\":60000}" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.trim().split("\n")){const o=JSON.parse(l); if(o.event==="result") console.log(process.argv[1], o.count, o.lastMessageMs)}})' $parse; echo "--- peak $(sort -n /tmp/rss.txt | tail -1) KB"; done
