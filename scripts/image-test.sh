#!/usr/bin/env bash
# Build the shipped Docker image and check it as a user would. Idempotent; CI runs it
# after the test suite (scripts/test.sh). Exits non-zero when any check fails.
#
#   scripts/image-test.sh
#
# 1. Installs what it needs (Debian's docker.io, debootstrap, docker-compose v1,
#    espeak-ng, sox) and starts dockerd when no engine answers (stopped again at the end).
# 2. When python:3.11-slim cannot be pulled (no Docker Hub here), makes a stand-in for it:
#    a Debian 12 minbase root from the host's apt mirror with Python 3.11 as
#    /usr/local/bin/python, the host's CA bundle and apt sources (test-only: the shipped
#    image's own layers never get them), imported as python:3.11-slim and kept.
# 3. Builds ./Dockerfile with torch from the host's package index (TORCH_INDEX_URL).
# 4. Runs it like the README says (plain `docker run`, no --init) and checks /health from
#    the host, the HEALTHCHECK, a dropped clip's text, POST /transcribe with the token,
#    uid 1000, a clean SIGTERM stop, CONFIG_PATH, the token requirement, docker-compose config.
#
# Environment: IMAGE_TEST_TAG (transcriber:image-test), IMAGE_TEST_KEEP_ENGINE=1 leaves a
# dockerd this script started running, IMAGE_TEST_MAX_WER (0.3).
set -uo pipefail
cd "$(dirname "$0")/.."

TAG="${IMAGE_TEST_TAG:-transcriber:image-test}"
BASE=python:3.11-slim
SUITE=bookworm
MAX_WER="${IMAGE_TEST_MAX_WER:-0.3}"
DOCKERD_LOG=/var/log/transcriber-image-test-dockerd.log
DOCKERD_PID=/var/run/docker.pid
STOP_LIMIT=40
export DOCKER_BUILDKIT=0  # the engine's classic builder: Debian's docker.io has no buildx plugin

passed=0
failed=0
started_engine=0
containers=()
work=""
declare -A timing

say() { printf '[image-test] %s\n' "$*"; }
die() { say "FATAL: $*"; summary; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

pass() { passed=$((passed + 1)); say "PASS: $*"; }
fail() {
    # $1: what failed; $2 (optional): a container whose log to show
    failed=$((failed + 1))
    say "FAIL: $1"
    if [ -n "${2:-}" ]; then
        say "---- log of container $2 ----"
        docker logs --tail 200 "$2" 2>&1 | sed 's/^/    /'
        say "---- state: $(docker inspect -f '{{json .State}}' "$2" 2>&1)"
    fi
}
check() {
    # check "description" container command...: pass when the command succeeds
    local what=$1 container=$2
    shift 2
    if "$@"; then pass "$what"; else fail "$what" "$container"; fi
}

summary() {
    say "summary:"
    local key
    for key in base standin_seconds build_seconds image_size healthy_seconds ready_seconds transcribe_seconds speakers_seconds \
               transcript wer api_seconds stop_seconds; do
        [ -n "${timing[$key]:-}" ] && printf '[image-test]   %-20s %s\n' "$key" "${timing[$key]}"
    done
    echo "image checks: $passed passed, $failed failed"
}

cleanup() {
    local container
    for container in "${containers[@]}"; do docker rm -fv "$container" >/dev/null 2>&1; done
    [ -n "$work" ] && as_root rm -rf "$work"
    if [ "$started_engine" -eq 1 ] && [ "${IMAGE_TEST_KEEP_ENGINE:-0}" != 1 ]; then
        say "stopping the dockerd this run started"
        local pid
        pid=$(cat "$DOCKERD_PID" 2>/dev/null) && as_root kill "$pid" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
}
trap cleanup EXIT

# -- 1. tools and engine ---------------------------------------------------------------

install_packages() {
    local wanted=(docker.io debootstrap docker-compose espeak-ng sox ffmpeg curl ca-certificates) missing=()
    local package
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "system packages present: ${wanted[*]}"
        return
    fi
    say "installing system packages: ${missing[*]}"
    as_root apt-get update -q || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

engine_answers() {
    # The client in /usr/local/bin is newer than Debian's dockerd; it negotiates the API
    # version down. A client that does not is pinned to the engine's version instead.
    if ! timeout 20 docker version >/dev/null 2>&1 && [ -z "${DOCKER_API_VERSION:-}" ] \
            && timeout 20 docker version 2>&1 | grep -qi "too new"; then
        DOCKER_API_VERSION=$(curl -s --unix-socket /var/run/docker.sock http://localhost/version \
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["ApiVersion"])')
        export DOCKER_API_VERSION
        say "pinning the client to the engine's API version $DOCKER_API_VERSION"
    fi
    timeout 20 docker version >/dev/null 2>&1
}

start_engine() {
    # Debian's docker.io puts dockerd in /usr/sbin; an init system may not run here.
    local attempt options
    # Without overlay support dockerd picks another storage driver itself (vfs: slow, and
    # several times the image size on disk). Without iptables the bridge still publishes
    # ports through docker-proxy, and the builds use the host's network anyway.
    for attempt in default no-iptables; do
        case $attempt in
            default) options=() ;;
            no-iptables) options=(--iptables=false --ip-masq=false) ;;
        esac
        say "starting dockerd (${options[*]:-default options}), log $DOCKERD_LOG"
        as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
        as_root bash -c "nohup dockerd --pidfile '$DOCKERD_PID' ${options[*]} >>'$DOCKERD_LOG' 2>&1 &"
        for _ in $(seq 60); do
            engine_answers && { started_engine=1; return 0; }
            sleep 1
        done
        say "dockerd did not answer; its log:"
        tail -20 "$DOCKERD_LOG" | sed 's/^/    /'
        local pid
        pid=$(cat "$DOCKERD_PID" 2>/dev/null) && as_root kill "$pid" 2>/dev/null && sleep 3
    done
    return 1
}

ensure_engine() {
    engine_answers || start_engine || die "no Docker engine answers and dockerd could not be started"
    say "engine: $(docker version -f 'server {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}' 2>&1)," \
        "storage $(docker info -f '{{.Driver}}' 2>/dev/null)"
}

# -- 2. the base image -----------------------------------------------------------------

debian_mirror() {
    # The main Debian mirror the host's apt uses (deb822 .sources or one-line .list).
    python3 - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
    + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for name in files:
    try:
        text = open(name).read()
    except OSError:
        continue
    if name.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if fields.get("Enabled", "yes") != "no" and "deb" in fields.get("Types", "").split() \
                    and suite in fields.get("Suites", "").split():
                print(fields["URIs"].split()[0]); sys.exit(0)
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                print(words[1]); sys.exit(0)
sys.exit(1)
EOF
}

make_standin() {
    local mirror root started
    started=$(now)
    mirror=$(debian_mirror) || die "no Debian $SUITE mirror in the host's apt sources"
    root=$(mktemp -d /var/tmp/transcriber-standin.XXXXXX)
    say "making a stand-in for $BASE: debootstrap --variant=minbase $SUITE from $mirror"
    as_root debootstrap --variant=minbase --include=python3,python3-venv,libpython3.11,ca-certificates \
        "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 || { tail -30 "$root.log"; die "debootstrap failed"; }
    # Python 3.11 where python:3.11-slim has it: a venv at /usr/local (so /usr/local/bin/python
    # and pip, packages in /usr/local/lib/python3.11/site-packages, no PEP 668 marker applies).
    as_root chroot "$root" /usr/bin/python3 -m venv /usr/local || die "python3 -m venv /usr/local failed in the stand-in"
    as_root rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    # The host's CA bundle, so pip and apt inside builds reach the registries as the host
    # does; split into single certificates too, so an update-ca-certificates run keeps them.
    as_root cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    as_root mkdir -p "$root/usr/local/share/ca-certificates/host"
    as_root awk -v dir="$root/usr/local/share/ca-certificates/host" \
        '/BEGIN CERTIFICATE/ { n++; file = sprintf("%s/host-%03d.crt", dir, n) } file { print > file } /END CERTIFICATE/ { close(file); file = "" }' \
        /etc/ssl/certs/ca-certificates.crt
    # The host's Debian sources (bookworm, -updates, -security), in place of debootstrap's one line.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        as_root cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
        as_root rm -f "$root/etc/apt/sources.list"
    elif [ -f /etc/apt/sources.list ]; then
        as_root cp /etc/apt/sources.list "$root/etc/apt/sources.list"
    fi
    as_root chroot "$root" apt-get clean
    as_root rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/* "$root"/var/log/*.log
    as_root tar -C "$root" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.transcriber.image-test.stand-in="debootstrap minbase '"$SUITE"', test only"' \
        --change 'CMD ["python3"]' \
        -m "transcriber image-test stand-in for $BASE" - "$BASE" >/dev/null \
        || die "docker import of the stand-in failed"
    as_root rm -rf "$root" "$root.log"
    timing[standin_seconds]=$(since "$started")
}

ensure_base() {
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        say "$BASE present"
    elif timeout 120 docker pull -q "$BASE" >/dev/null 2>&1; then
        say "pulled $BASE"
    else
        say "$BASE cannot be pulled"
        make_standin
    fi
    local label
    label=$(docker image inspect -f '{{index .Config.Labels "org.transcriber.image-test.stand-in"}}' "$BASE" 2>/dev/null)
    timing[base]="$BASE${label:+ (stand-in: $label)}"
    check "the base has Python 3.11 as /usr/local/bin/python" "" \
        bash -c "docker run --rm '$BASE' /usr/local/bin/python -c 'import sys, ssl, venv; assert sys.version_info[:2] == (3, 11)'"
}

# -- 3. the build ----------------------------------------------------------------------

host_pip() {
    # The value the host's pip uses for one option (environment over config files), or empty.
    local option=$1 variable
    variable="PIP_$(echo "$option" | tr 'a-z-' 'A-Z_')"
    if [ -n "${!variable:-}" ]; then echo "${!variable}"; return; fi
    local python=python3
    [ -x .venv/bin/python ] && python=.venv/bin/python
    "$python" -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$option='\(.*\)'$/\1/p" | tail -1
}

build_image() {
    local index extra trusted old started
    index=$(host_pip index-url)
    index=${index:-https://pypi.org/simple}
    # Local file:// indexes and find-links of the host are not reachable inside the build.
    extra=$(host_pip extra-index-url | tr ' ' '\n' | grep -v '^file:' | grep . | tr '\n' ' ' | sed 's/ $//')
    trusted=$(host_pip trusted-host)
    say "building $TAG (torch and the rest from the host's index, ${extra:+extra indexes, }host network)"
    old=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null)
    started=$(now)
    if ! docker build --network host -t "$TAG" \
            --build-arg "TORCH_INDEX_URL=$index" \
            --build-arg "PIP_INDEX_URL=$index" \
            ${extra:+--build-arg "PIP_EXTRA_INDEX_URL=$extra"} \
            ${trusted:+--build-arg "PIP_TRUSTED_HOST=$trusted"} \
            . >"$work/build.log" 2>&1; then
        tail -60 "$work/build.log" | sed 's/^/    /'
        fail "docker build"
        die "the image did not build"
    fi
    timing[build_seconds]="$(since "$started") ($(grep -c 'Using cache' "$work/build.log") of $(grep -c '^Step ' "$work/build.log") steps cached)"
    say "built in ${timing[build_seconds]}"
    pass "docker build ($TAG)"
    local new
    new=$(docker image inspect -f '{{.Id}}' "$TAG")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
    timing[image_size]="$(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.2f GB", $1 / 1e9}')"
}

# -- 4. the checks ---------------------------------------------------------------------

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

make_clip() {
    # make_clip "text" file.(wav|ogg)
    espeak-ng -v en-us -s 140 -w "$work/speech.wav" "$1" && sox "$work/speech.wav" -r 16000 -c 1 "$work/speech16.wav" \
        && ffmpeg -loglevel error -y -i "$work/speech16.wav" "$2" && rm -f "$work/speech.wav" "$work/speech16.wav"
}

wer() {
    # word error rate of $2 against reference $1
    python3 - "$1" "$2" <<'EOF'
import re, sys
ref, hyp = (re.findall(r"[a-z']+", s.lower()) for s in sys.argv[1:3])
d = list(range(len(hyp) + 1))
for i, r in enumerate(ref, 1):
    prev, d[0] = d[0], i
    for j, h in enumerate(hyp, 1):
        prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
print(f"{d[-1] / max(len(ref), 1):.3f}")
EOF
}

wait_for() {
    # wait_for seconds command...: poll every 0.5 s until the command succeeds
    local deadline
    deadline=$(( $(date +%s) + $1 ))
    shift
    until "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

health_status() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null; }
is_healthy() { [ "$(health_status "$1")" = healthy ]; }
answers_health() {
    # any HTTP answer (200, or 503 with the reason) from the published port
    local code
    code=$(curl -s -m 5 -o "$work/health.json" -w '%{http_code}' "http://127.0.0.1:$1/health" 2>/dev/null)
    [ "${code:-000}" != 000 ]
}
model_loaded() {
    curl -fsS -m 5 "http://127.0.0.1:$1/health" 2>/dev/null \
        | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)["models_loaded"])' 2>/dev/null
}
exited() { [ "$(docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null)" = exited ]; }

run_checks() {
    local token port container shared started text value
    token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
    port=$(free_port)
    shared="$work/shared"
    mkdir -p "$shared" && chmod 0775 "$shared" && as_root chown 1000:1000 "$shared"
    container="transcriber-image-test-$$"

    check "the image's HEALTHCHECK calls /health" "" \
        bash -c "docker image inspect -f '{{json .Config.Healthcheck.Test}}' '$TAG' | grep -q '127.0.0.1:.*/health'"

    # What the README and docs/DEPLOYMENT.md tell a user to run: no --init, no config flag.
    say "docker run -d -p $port:8000 -v $shared:/app/shared -e TRANSCRIBER_API_TOKEN=… -e WHISPERX_LANGUAGE=en" \
        "--health-interval 2s --health-start-period 300s $TAG"
    started=$(now)
    docker run -d --name "$container" -p "$port:8000" -v "$shared:/app/shared" \
        -e "TRANSCRIBER_API_TOKEN=$token" -e WHISPERX_LANGUAGE=en \
        --health-interval 2s --health-start-period 300s \
        "$TAG" >/dev/null || die "docker run failed"
    containers+=("$container")

    if wait_for 300 answers_health "$port"; then
        pass "/health answers on the published port 127.0.0.1:$port ($(since "$started") s)"
    else
        fail "/health on the published port 127.0.0.1:$port" "$container"
        die "the container serves nothing on its published port"
    fi
    if wait_for 300 is_healthy "$container"; then
        timing[healthy_seconds]=$(since "$started")
        pass "HEALTHCHECK healthy after ${timing[healthy_seconds]} s"
    else
        fail "HEALTHCHECK healthy (status: $(health_status "$container"))" "$container"
    fi
    if wait_for 300 model_loaded "$port"; then
        timing[ready_seconds]=$(since "$started")
        pass "the worker preloaded the model after ${timing[ready_seconds]} s (/health models_loaded)"
    else
        fail "the worker preloads the model within 300 s (/health models_loaded)" "$container"
    fi
    check "PID 1 is the daemon itself (no init)" "$container" \
        bash -c "docker exec '$container' cat /proc/1/cmdline | tr '\0' ' ' | grep -q 'python -m transcriber'"
    check "every process in the container runs as uid 1000" "$container" \
        bash -c "[ \"\$(docker exec '$container' id -u)\" = 1000 ] \
                 && [ \"\$(docker top '$container' -eo pid,uid | awk 'NR > 1 { print \$2 }' | sort -u)\" = 1000 ]"
    check "the API needs the token (POST /transcribe without it: 401)" "$container" \
        bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{\"filename\": \"x.wav\"}' http://127.0.0.1:$port/transcribe)\" = 401 ]"

    # A clip dropped into the mounted folder comes back as its text.
    local sentence="the quick brown fox jumps over the lazy dog"
    make_clip "$sentence" "$work/fox.wav" || die "could not make the test clip (espeak-ng, sox, ffmpeg)"
    started=$(now)
    cp "$work/fox.wav" "$shared/.fox.wav.part" && mv "$shared/.fox.wav.part" "$shared/fox.wav"
    if wait_for 300 test -s "$shared/fox.wav.result"; then
        timing[transcribe_seconds]=$(since "$started")
        text=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["transcription"]["text"].strip())' "$shared/fox.wav.result")
        value=$(wer "$sentence" "$text")
        timing[transcript]="\"$text\""
        timing[wer]=$value
        check "the dropped clip reads \"$text\" (WER $value <= $MAX_WER, ${timing[transcribe_seconds]} s)" "$container" \
            python3 -c "import sys; sys.exit(float('$value') > float('$MAX_WER'))"
        check "the result on the host is owned by uid 1000" "$container" \
            bash -c "[ \"\$(stat -c %u '$shared/fox.wav.result')\" = 1000 ]"
    else
        fail "a result for the dropped clip within 300 s" "$container"
        ls -la "$shared" | sed 's/^/    /'
        cat "$shared"/fox.wav.in_progress 2>/dev/null | sed 's/^/    /'
    fi

    # POST /transcribe with the token through the published port.
    local second="please send the weekly report to the office before noon on friday"
    make_clip "$second" "$work/hello.ogg" || die "could not make the second clip"
    cp "$work/hello.ogg" "$shared/.hello.ogg.part" && mv "$shared/.hello.ogg.part" "$shared/hello.ogg"
    started=$(now)
    local code
    code=$(curl -s -o "$work/post.json" -w '%{http_code}' -m 200 -X POST "http://127.0.0.1:$port/transcribe" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"filename": "hello.ogg", "language": "en", "wait": 180}')
    timing[api_seconds]=$(since "$started")
    text=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"]["transcription"]["text"].strip())' "$work/post.json" 2>/dev/null)
    value=$(wer "$second" "$text")
    check "POST /transcribe with the token: $code, \"$text\" (WER $value, ${timing[api_seconds]} s)" "$container" \
        python3 -c "import sys; sys.exit(not ('$code' == '200' and float('$value') <= float('$MAX_WER')))"
    [ "$code" = 200 ] || sed 's/^/    /' "$work/post.json"

    # Speakers, from the speaker model baked into the image: a call of two voices, diarized. The
    # dispatcher's two turns say different things: the same audio twice is not a real call, and its
    # near-identical windows make tight clusters of their own (docs/TROUBLESHOOTING.md).
    espeak-ng -v en-us+f2 -s 150 -w "$work/a.wav" "Good morning, this is the dispatch centre. How can I help you today?" \
        && espeak-ng -v en-gb+m3 -s 150 -w "$work/b.wav" "There is a fire in the kitchen of my neighbour's flat, please come quickly." \
        && espeak-ng -v en-us+f2 -s 150 -w "$work/c.wav" "Please stay on the line. The fire engine is on its way to you now." \
        && sox "$work/a.wav" -r 16000 -c 1 "$work/a16.wav" pitch 100 && sox "$work/b.wav" -r 16000 -c 1 "$work/b16.wav" pitch -150 \
        && sox "$work/c.wav" -r 16000 -c 1 "$work/c16.wav" pitch 100 \
        && sox "$work/a16.wav" "$work/b16.wav" "$work/c16.wav" "$work/call.wav" || die "could not make the two-voice call"
    cp "$work/call.wav" "$shared/.call.wav.part" && mv "$shared/.call.wav.part" "$shared/call.wav"
    started=$(now)
    code=$(curl -s -o "$work/speakers.json" -w '%{http_code}' -m 300 -X POST "http://127.0.0.1:$port/transcribe" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"filename": "call.wav", "language": "en", "diarize": true, "wait": 280}')
    timing[speakers_seconds]=$(since "$started")
    check "POST /transcribe with diarize: $code, two speakers by campplus, A-B-A turns (${timing[speakers_seconds]} s)" "$container" \
        python3 -c "
import json, sys
result = json.load(open(sys.argv[1]))['result']
turns = [t['speaker'] for t in result['transcription']['turns']]
sys.exit(not (result['metadata']['diarization']['backend'] == 'campplus'
              and [s['id'] for s in result['transcription']['speakers']] == ['SPEAKER_00', 'SPEAKER_01']
              and turns == ['SPEAKER_00', 'SPEAKER_01', 'SPEAKER_00']))" "$work/speakers.json"
    [ "$code" = 200 ] || sed 's/^/    /' "$work/speakers.json"
    python3 -c "
import json, sys
result = json.load(open(sys.argv[1]))['result']
print('    diarization:', result['metadata'].get('diarization'))
print('    turns:', [(t['speaker'], t['start'], t['end']) for t in result['transcription'].get('turns', [])])" \
        "$work/speakers.json" 2>/dev/null || true

    check "the workers are up (/health healthy, every worker idle or busy)" "$container" \
        python3 -c "
import json, sys
body = json.loads(sys.argv[1])
sys.exit(not (body['status'] == 'healthy' and body['worker'] and all(w['state'] in ('idle', 'busy') for w in body['worker'])))" \
        "$(curl -s "http://127.0.0.1:$port/health")"

    # SIGTERM: a clean stop within the grace period.
    started=$(now)
    docker stop -t 45 "$container" >/dev/null
    timing[stop_seconds]=$(since "$started")
    check "docker stop (SIGTERM) exits within $STOP_LIMIT s (${timing[stop_seconds]} s), exit code 0, log says Stopped" "$container" \
        bash -c "python3 -c 'import sys; sys.exit(float(sys.argv[1]) > $STOP_LIMIT)' ${timing[stop_seconds]} \
                 && [ \"\$(docker inspect -f '{{.State.ExitCode}}' '$container')\" = 0 ] \
                 && docker logs '$container' 2>&1 | grep -q 'Stopped'"

    check_config_path
    check_token_required
    check_compose
}

check_config_path() {
    # CONFIG_PATH is honoured: a config mounted elsewhere that moves the API to port 8001.
    local port container shared="$work/shared-config"
    port=$(free_port)
    container="transcriber-image-test-config-$$"
    mkdir -p "$shared" "$work/config" && as_root chown 1000:1000 "$shared"
    sed -e 's|^shared_directory:.*|shared_directory: /app/shared|' \
        -e 's|^  port: 8000|  port: 8001|' \
        -e 's|^  dir: ./models|  dir: /app/models|' \
        -e 's|^  cache_dir: ./models/cache|  cache_dir: /app/models/cache|' config.yaml >"$work/config/transcriber.yaml"
    grep -q '^  port: 8001' "$work/config/transcriber.yaml" || { fail "the CONFIG_PATH test config (port 8001)"; return; }
    docker run -d --name "$container" -p "$port:8001" -v "$shared:/app/shared" \
        -v "$work/config/transcriber.yaml:/etc/transcriber/transcriber.yaml:ro" \
        -e CONFIG_PATH=/etc/transcriber/transcriber.yaml -e TRANSCRIBER_API_TOKEN=config-path-test-token-1234567890 \
        -e TRANSCRIBER_WHISPERX__PRELOAD_MODEL=false "$TAG" >/dev/null || { fail "docker run with CONFIG_PATH"; return; }
    containers+=("$container")
    if wait_for 120 answers_health "$port"; then
        check "CONFIG_PATH is honoured (the mounted config's port 8001 answers; 8000 does not)" "$container" \
            bash -c "docker logs '$container' 2>&1 | grep -q 'API listening on http://0.0.0.0:8001' \
                     && ! docker exec '$container' python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)\" 2>/dev/null"
    else
        fail "CONFIG_PATH: /health on the mounted config's port 8001" "$container"
    fi
    docker rm -fv "$container" >/dev/null 2>&1
}

check_token_required() {
    # Listening on all interfaces, the daemon refuses to start without a token.
    local container="transcriber-image-test-notoken-$$" shared="$work/shared-notoken" code
    mkdir -p "$shared" && as_root chown 1000:1000 "$shared"
    docker run -d --name "$container" -v "$shared:/app/shared" "$TAG" >/dev/null || { fail "docker run without a token"; return; }
    containers+=("$container")
    if wait_for 60 exited "$container"; then
        code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
        check "without a token the container exits at once with code 2 ($code) and says why" "$container" \
            bash -c "[ '$code' = 2 ] && docker logs '$container' 2>&1 | grep -qi token"
    else
        fail "without a token the container exits (still running after 60 s)" "$container"
    fi
    docker rm -fv "$container" >/dev/null 2>&1
}

check_compose() {
    check "docker-compose config accepts docker-compose.yml (init: true)" "" \
        bash -c "TRANSCRIBER_API_TOKEN=compose-check-token docker-compose -f docker-compose.yml config 2>&1 >'$work/compose.yml' \
                 && grep -q 'init: true' '$work/compose.yml'"
}

main() {
    install_packages
    ensure_engine
    work=$(mktemp -d /tmp/transcriber-image-test.XXXXXX)
    chmod 0755 "$work"
    ensure_base
    build_image
    run_checks
    summary
    [ "$failed" -eq 0 ]
}

main "$@"
