// Certificates for TLS tests, made once per test binary with the openssl command line
// (tests/support/make-certs.sh lists them), and a mosquitto TLS listener that uses them.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

inline const std::string& certs() {
  static TempDir* dir = new TempDir;  // kept for the whole test binary
  static const std::string path = [] {
    std::string out;
    const int rc =
        run({"bash", std::string(EDGEGW_SOURCE_DIR) + "/tests/support/make-certs.sh", dir->file("certs")}, &out);
    EXPECT_EQ(rc, 0) << out;
    return dir->file("certs");
  }();
  return path;
}
inline std::string cert(const std::string& name) { return certs() + "/" + name; }

// mosquitto listener settings presenting `server_cert` (every one is signed with server.key).
inline std::string listener(const std::string& server_cert, const std::string& extra = "") {
  return "cafile " + cert("ca.pem") + "\ncertfile " + cert(server_cert) + "\nkeyfile " + cert("server.key") + "\n" +
         extra;
}

}  // namespace edgegw::test
