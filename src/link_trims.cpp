// Definitions that keep unused library code out of the static board binary: when an object
// file defines a symbol, a static link never takes the archive member of a library that
// defines it too, nor what that member needs. docs/FOOTPRINT.md has the sizes.
#include <cstdio>
#include <cstdlib>
#include <exception>

#if __has_include(<mbedtls/certs.h>)
#include <mbedtls/certs.h>
#endif

namespace {

// libstdc++'s default handler names the type of the uncaught exception, and to do so
// carries the whole C++ demangler (48 KB). This one gives the same report but for the
// type's name. Only a static libstdc++ takes it: a shared one keeps its own handler.
[[noreturn]] void report_and_abort() noexcept {
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "terminate called after throwing an exception\n  what():  %s\n", e.what());
    } catch (...) {
      std::fputs("terminate called after throwing an exception\n", stderr);
    }
  } else {
    std::fputs("terminate called without an active exception\n", stderr);
  }
  std::abort();
}

}  // namespace

// The variable std::terminate() calls through; libstdc++ defines it, set to its default
// handler, in an archive member of its own.
namespace __cxxabiv1 {
// NOLINTNEXTLINE(bugprone-reserved-identifier): libstdc++'s own name, replaced on purpose
extern std::terminate_handler __terminate_handler;
// NOLINTNEXTLINE(bugprone-reserved-identifier)
std::terminate_handler __terminate_handler = report_and_abort;
}  // namespace __cxxabiv1

#if defined(MBEDTLS_CERTS_C) && defined(MBEDTLS_SELF_TEST)
// mbedTLS 2.28's mbedtls_x509_self_test(), which edgegw never calls, parses these test
// certificates; Debian's libmbedx509.a has it in one section with the X.509 parsing edgegw
// does need, so the linker would keep all of mbedTLS's test certificates and keys (54 KB).
// Empty ones instead: a self-test would fail to parse them and report the failure.
extern "C" {
const char* mbedtls_test_ca_crt = "";
const size_t mbedtls_test_ca_crt_len = 0;
const char* mbedtls_test_cli_crt = "";
const size_t mbedtls_test_cli_crt_len = 0;
}
#endif
