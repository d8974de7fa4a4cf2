# shellcheck shell=bash
# Local servers for the demo and the tests, on 127.0.0.1 only. Sourced.

# A free TCP port on 127.0.0.1, below the kernel's ephemeral range (so no
# outgoing connection can be holding it) and not used by any socket now.
lr_free_port() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % (lo > 21000 ? lo - 20000 : 1000)))
		[ "$p" != "${LR_PORT_TAKEN:-}" ] || continue
		ss -Htan "sport = :$p" | grep . >/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# lr_test_ca DIR: a throw-away CA (DIR/ca.pem) and a certificate for
# lazyroot.test signed by it (DIR/server.pem, DIR/server.key).
lr_test_ca() {
	local d=$1
	[ -s "$d/ca.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=lazyroot test CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=lazyroot.test" \
			-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
		printf 'subjectAltName=DNS:lazyroot.test\n' >"$d/san.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null
}

# lr_nginx_start ROOT STATEDIR: serve ROOT on 127.0.0.1:$HTTP_PORT (http)
# and $HTTPS_PORT (https with STATEDIR's test certificate, lr_test_ca).
# Sets NGINX_PID; the caller stops it. Returns non-zero if it won't start.
lr_nginx_start() {
	local root=$1 s=$2
	mkdir -p "$s"
	lr_test_ca "$s" || return 1
	HTTP_PORT=$(lr_free_port) || return 1
	HTTPS_PORT=$(LR_PORT_TAKEN=$HTTP_PORT lr_free_port) || return 1
	# nginx's workers run as nobody, who cannot reach a tree under a
	# 0700 home (a clone in /root on Debian): then they run as root. A
	# loopback server for the tests and the demo, serving our own files.
	local user=''
	if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$root" -a -x "$root" 2>/dev/null; then
		user='user root root;'
	fi
	cat >"$s/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $s/nginx.pid;
error_log $s/error.log;
events { worker_connections 128; }
http {
	access_log $s/access.log;
	# Per request over TLS: the connection and whether its session was
	# resumed ("r") or a full handshake (".").
	log_format tls '\$connection \$ssl_session_reused';
	# ... and its protocol and cipher suite.
	log_format cipher '\$connection \$ssl_protocol \$ssl_cipher';
	client_body_temp_path $s;
	proxy_temp_path $s;
	fastcgi_temp_path $s;
	uwsgi_temp_path $s;
	scgi_temp_path $s;
	default_type application/octet-stream;
	server { listen 127.0.0.1:$HTTP_PORT; root $root; }
	server {
		listen 127.0.0.1:$HTTPS_PORT ssl;
		server_name lazyroot.test;
		ssl_certificate $s/server.pem;
		ssl_certificate_key $s/server.key;
		# nginx 1.23.4+'s default; Debian 12's 1.22 leaves TLS 1.3 out
		ssl_protocols TLSv1.2 TLSv1.3;
		access_log $s/tls.log tls;
		access_log $s/cipher.log cipher;
		access_log $s/access.log;
		root $root;
	}
}
CONF
	: >"$s/access.log"
	nginx -c "$s/nginx.conf" -p "$s" >"$s/stderr" 2>&1 &
	NGINX_PID=$!
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && return 0
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "nginx on 127.0.0.1:$HTTP_PORT/$HTTPS_PORT did not start; its stderr and error.log:" >&2
	cat "$s/stderr" "$s/error.log" >&2 2>/dev/null
	return 1
}

# A QEMU guestfwd rule: guest connections to IP:PORT reach
# 127.0.0.1:HOSTPORT, one relay process per connection (the tcp: form of
# guestfwd connects only once).
lr_fwd() {
	# socat's own messages must not reach the guest: with a stopped
	# server, "connection refused" arrived in the guest as the bytes of a
	# reply (curl: "Unsupported protocol", HTTP/0.9) instead of the closed
	# connection a real network gives.
	#
	# nodelay: QEMU hands the relay one end of a TCP connection on
	# loopback (libslirp's socket pair for guestfwd's cmd:), whose MSS is
	# 64 KiB: with Nagle on, every reply larger than socat's 8 KiB
	# buffer sent its first 8 KiB and held the rest until QEMU's delayed
	# ACK, 40 ms later (seen in a packet capture of the guest's NIC,
	# LAZYROOT_PCAP in scripts/run-qemu). No real link adds that. QEMU
	# reads ",," as a comma within its option.
	echo "tcp:$1:$2-cmd:socat -lf /dev/null STDIO,,nodelay TCP:127.0.0.1:$3"
}
