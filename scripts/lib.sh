# shellcheck shell=bash disable=SC2154,SC2034  # $work and $bin come from, $daemon goes to, the caller
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
  cat "$work/$1/stderr.log" >&2
  exit 1
}
start_broker() {
  mosquitto -c "$work/$1/mosquitto.conf" 2>>"$work/$1/stderr.log" &
  echo $! >"$work/$1/pid"
}
stop_broker() { kill "$(cat "$work/$1/pid")"; while kill -0 "$(cat "$work/$1/pid")" 2>/dev/null; do sleep 0.1; done; }

# relay_broker NAME PORT LOCAL_PORT UP_PORT PREFIX: a third mosquitto, on 127.0.0.1:PORT,
# that relays sensors/# from the local broker to the upstream broker as PREFIX + topic,
# like edgegw (the baseline of scripts/bench). Two bridge connections, both MQTT 5 and
# QoS 1: "in" from the local broker, "out" to the upstream one. It keeps everything in
# RAM (persistence false: no disk, nothing survives a crash) and queues without limit, so
# that a burst is delayed, never dropped; 64 messages in flight upstream, as edgegw's
# uplink.max_inflight in gateway_config. Its pid is in $work/NAME/pid.
relay_broker() {
  mkdir -p "$work/$1"
  cat >"$work/$1/mosquitto.conf" <<CONF
listener $2 127.0.0.1
user $(id -un)
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 64
log_dest file $work/$1/broker.log

connection $1-in
address 127.0.0.1:$3
bridge_protocol_version mqttv50
cleansession true
try_private false
notifications false
topic sensors/# in 1

connection $1-up
address 127.0.0.1:$4
bridge_protocol_version mqttv50
cleansession true
try_private false
notifications false
topic sensors/# out 1 "" $5
CONF
  start_broker "$1"
}

# wait_relay LOCAL_PORT UP_PORT PREFIX: returns once a message published on the local
# broker (sensors/relay-probe) has come out on the upstream broker (PREFIX +
# sensors/relay-probe), i.e. once whatever relays between them is working end to end;
# exits after 15 s.
wait_relay() {
  local out="$work/relay-probe.out" sub
  rm -f "$out"
  mosquitto_sub -p "$2" -t "${3}sensors/relay-probe" -q 1 -C 1 -W 15 >"$out" 2>/dev/null &
  sub=$!
  sleep 0.3
  for _ in $(seq 140); do
    [ -s "$out" ] && break
    mosquitto_pub -p "$1" -t sensors/relay-probe -q 1 -m probe 2>/dev/null || true
    sleep 0.1
  done
  if ! wait "$sub"; then
    echo "$0: nothing published on 127.0.0.1:$1 came out on 127.0.0.1:$2 within 15 s" >&2
    exit 1
  fi
}

# gateway_config FILE LOCAL_PORT UP_PORT [RECEIVE_MAXIMUM]: an edgegw config between the
# two brokers; RECEIVE_MAXIMUM sets ingest.receive_maximum (default: edgegw's).
gateway_config() {
  cat >"$1" <<CONF
[gateway]
id = "demo-gw"
state_dir = "$work/state"

[ingest]
url = "mqtt://127.0.0.1:$2"
topics = ["sensors/#"]
qos = 1
${4:+receive_maximum = $4}

[uplink]
url = "mqtt://127.0.0.1:$3"
topic_prefix = "site-a/"
qos = 1
max_inflight = 64

[pool]
slots = 4096
slot_bytes = 1024

[spool]
max_bytes = "64MiB"
sync = "batch"
commit_interval = "0ms"
CONF
}

# start_gateway CONFIG [BINARY]: BINARY (default $bin/edgegw) run in the background
# ($daemon, logging to $work/edgegw.log), once it has subscribed.
start_gateway() {
  "${2:-$bin/edgegw}" run --config "$1" 2>"$work/edgegw.log" &
  daemon=$!
  for _ in $(seq 100); do grep -q "ingest: subscribed" "$work/edgegw.log" && return; sleep 0.1; done
  echo "$0: edgegw did not subscribe:" >&2
  cat "$work/edgegw.log" >&2
  exit 1
}
