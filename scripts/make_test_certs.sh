#!/usr/bin/env bash
# Makes self-signed test certificates with the openssl CLI (never commit the keys):
#   scripts/make_test_certs.sh DIR
# DIR/ca.pem, ca.key          a test CA
# DIR/localhost.pem, .key     signed by the CA: localhost, 127.0.0.1 (the default cert)
# DIR/api.pem, api.key        signed by the CA: api.example.com, *.api.example.com
# DIR/client.pem, client.key  a client certificate signed by the CA (mTLS)
# DIR/other-ca.pem, .key      an unrelated CA; other-client.pem/.key is signed by it
# conf/examples/tls.toml expects DIR = conf/examples/certs.
set -euo pipefail
dir="${1:?usage: make_test_certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"

ca() {  # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

leaf() {  # name ca subject san extended-usage
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n%s\n' \
    "$5" "${4:+subjectAltName=$4}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "gateway test CA"
ca other-ca "unrelated test CA"
leaf localhost ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth
leaf api ca api.example.com "DNS:api.example.com,DNS:*.api.example.com" serverAuth
leaf client ca "test client" "" clientAuth
leaf other-client other-ca "stranger" "" clientAuth
rm -f ./*.srl
echo "test certificates in $dir"
