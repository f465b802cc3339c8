#!/bin/bash
# usage: curl-replay.sh <VAR=value...>: one replay of the topic tp-replay (200,000 messages of ~580 B,
# produced with kcat) through bench/servers/bridge.mjs under --cpu-prof, read by curl and counted by grep.
# BENCH_THREADS=1 needed the stream host (stream-host.patch applied).
cd /work/main/bench
env "$@" node --cpu-prof --cpu-prof-dir=/tmp/tp servers/bridge.mjs > /tmp/tp/out.txt 2>&1 &
sleep 1.5
PORT=$(grep -o '"port":[0-9]*' /tmp/tp/out.txt | cut -d: -f2)
A=$(node -e 'console.log(encodeURIComponent(JSON.stringify([{topic:"tp-replay",partition:0,offset:0}])))')
s=$(date +%s.%N)
n=$(curl -s -N --max-time 60 "http://127.0.0.1:$PORT/stream?assign=$A" | head -n 600003 | grep -c "^data:")
e=$(date +%s.%N)
echo "$* lines=$n secs=$(echo "$e - $s" | bc)"
pkill -TERM -f "servers/bridge.mjs"; sleep 1.5
