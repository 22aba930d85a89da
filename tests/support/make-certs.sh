#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with the openssl command line, into DIR:
#   ca.pem                  the test CA (EC P-256) that edgegw trusts
#   server.pem, server.key  localhost / 127.0.0.1 / ::1, valid now      (signed by ca)
#   wrong-host.pem          only DNS:other.example                      (signed by ca, server.key)
#   expired.pem             valid 2020-2021                             (signed by ca, server.key)
#   future.pem              valid 2040-2041                             (signed by ca, server.key)
#   self-signed.pem         127.0.0.1, signed by itself                 (server.key)
#   other-ca.pem            a CA edgegw does not trust
#   unknown-ca.pem          127.0.0.1, signed by other-ca               (server.key)
#   client.pem, client.key  a client certificate for mutual TLS         (signed by ca)
#   client2.pem/.key        another one, CN edgegw-client-2 (rotation)  (signed by ca)
#   rogue-client.pem/.key   a client certificate signed by other-ca
# Keys are mode 0600.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME CN: a self-signed CA with its own 'openssl ca' database
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  mkdir -p "$1.db"
  : >"$1.db/index"
  echo 1000 >"$1.db/serial"
  cat >"$1.cnf" <<CNF
[ca]
default_ca = this
[this]
database = $1.db/index
serial = $1.db/serial
new_certs_dir = $1.db
certificate = $1.pem
private_key = $1.key
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
CNF
}

# sign CA NAME KEY CN SAN START END [EXT]: a certificate for KEY signed by CA
sign() {
  local ca=$1 name=$2 k=$3 cn=$4 san=$5 start=$6 end=$7 usage=${8:-serverAuth}
  openssl req -new -key "$k" -subj "/CN=$cn" -addext "subjectAltName=$san" -addext "extendedKeyUsage=$usage" \
    -out "$name.csr" 2>/dev/null
  openssl ca -batch -config "$ca.cnf" -in "$name.csr" -out "$name.pem" -notext \
    -startdate "$start" -enddate "$end" 2>/dev/null
  rm -f "$name.csr"
}

now=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
later=$(date -u -d '+10 years' +%Y%m%d%H%M%SZ)
ca ca "edgegw test CA"
ca other-ca "some other CA"
key server.key
sign ca server server.key localhost "DNS:localhost,IP:127.0.0.1,IP:::1" "$now" "$later"
sign ca wrong-host server.key other.example "DNS:other.example" "$now" "$later"
sign ca expired server.key localhost "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20210101000000Z
sign ca future server.key localhost "DNS:localhost,IP:127.0.0.1" 20400101000000Z 20410101000000Z
sign other-ca unknown-ca server.key localhost "DNS:localhost,IP:127.0.0.1" "$now" "$later"
openssl req -x509 -new -key server.key -subj "/CN=localhost" -days 3650 -out self-signed.pem \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
key client.key
sign ca client client.key edgegw-client "DNS:edgegw-client" "$now" "$later" clientAuth
key client2.key
sign ca client2 client2.key edgegw-client-2 "DNS:edgegw-client-2" "$now" "$later" clientAuth
key rogue-client.key
sign other-ca rogue-client rogue-client.key rogue-client "DNS:rogue-client" "$now" "$later" clientAuth
chmod 600 ./*.key
