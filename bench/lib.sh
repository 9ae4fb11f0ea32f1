# Shared by the bench scripts (sourced, from the repository's root).

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# start_static_nginx WORK ROOT PORT: nginx serving ROOT's files on
# 127.0.0.1:PORT as the read ceiling (manifests, tag lists and blobs as
# static files with their media types, no access log, keep-alive
# unlimited), its configuration and logs under WORK. Sets
# STATIC_NGINX_PID.
start_static_nginx() {
  local work=$1 root=$2 port=$3
  mkdir -p "$root" "$work/nginx-tmp"
  cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx-tmp/body;
  proxy_temp_path $work/nginx-tmp/proxy;
  fastcgi_temp_path $work/nginx-tmp/fastcgi;
  uwsgi_temp_path $work/nginx-tmp/uwsgi;
  scgi_temp_path $work/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location ~ /manifests/ { default_type application/vnd.oci.image.manifest.v1+json; }
    location ~ /tags/list\$ { default_type application/json; }
    location / { default_type application/octet-stream; }
  }
}
NGINX
  nginx -c "$work/nginx.conf" >"$work/nginx.log" 2>&1 &
  STATIC_NGINX_PID=$!
}

# s3_curl CURL-ARGS…: curl against the test S3 service (Garage from
# scripts/test-env.sh) with SigV4 and an unsigned payload, the body to
# /dev/null: the storage's own speed, without Berth.
s3_curl() {
  curl -sf --aws-sigv4 "aws:amz:$BERTH_TEST_S3_REGION:s3" \
    --user "$BERTH_TEST_S3_ACCESS_KEY_ID:$BERTH_TEST_S3_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o /dev/null "$@"
}
