# Helpers for scripts/demo and scripts/bench (sourced). Everything runs on loopback, with
# its files in $work, which the caller creates and cleans up.

# A loopback port nothing listens on now (bash's /dev/tcp connect fails).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# broker NAME PORT: a mosquitto on 127.0.0.1:PORT with its files in $work/NAME; persistent,
# so that queued messages and sessions survive stop_broker / start_broker.
broker() {
  mkdir -p "$work/$1"
  cat >"$work/$1/mosquitto.conf" <<CONF
listener $2 127.0.0.1
user $(id -un)
allow_anonymous true
persistence true
persistence_location $work/$1/
autosave_interval 0
max_queued_messages 0
log_dest file $work/$1/broker.log
CONF
  start_broker "$1"
  for _ in $(seq 100); do mosquitto_pub -p "$2" -t edgegw/ping -m . 2>/dev/null && return; sleep 0.1; done
  echo "$0: the $1 broker did not start" >&2
  exit 1
}
start_broker() {
  mosquitto -c "$work/$1/mosquitto.conf" &
  echo $! >"$work/$1/pid"
}
stop_broker() { kill "$(cat "$work/$1/pid")"; while kill -0 "$(cat "$work/$1/pid")" 2>/dev/null; do sleep 0.1; done; }

# gateway_config FILE LOCAL_PORT UP_PORT: an edgegw config between the two brokers.
gateway_config() {
  cat >"$1" <<CONF
[gateway]
id = "demo-gw"
state_dir = "$work/state"

[ingest]
url = "mqtt://127.0.0.1:$2"
topics = ["sensors/#"]
qos = 1

[uplink]
url = "mqtt://127.0.0.1:$3"
topic_prefix = "site-a/"
qos = 1
max_inflight = 64

[pool]
slots = 1024
slot_bytes = 1024

[spool]
max_bytes = "64MiB"
sync = "batch"
batch_max_delay = "5ms"
CONF
}

# start_gateway CONFIG: edgegw run in the background ($daemon), once it has subscribed.
start_gateway() {
  "$bin/edgegw" run --config "$1" 2>"$work/edgegw.log" &
  daemon=$!
  for _ in $(seq 100); do grep -q "ingest: subscribed" "$work/edgegw.log" && return; sleep 0.1; done
  echo "$0: edgegw did not subscribe:" >&2
  cat "$work/edgegw.log" >&2
  exit 1
}
