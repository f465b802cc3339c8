module kafka-sse-bridge/bench/loadgen-go

go 1.22
