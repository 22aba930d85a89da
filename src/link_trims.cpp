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

#if defined(EDGEGW_STATIC_LINK)
// toml++ reads a TOML float with std::from_chars(double). libstdc++ 12 has its own
// conversion for it, in an archive member of 22 KB (Ryu tables, and the float and long
// double overloads with it); glibc's strtod, which the binary carries anyway (libstdc++'s
// locale code uses it), does the same work. toml++ has checked the text first: digits, one
// '.', an exponent, signs only after 'e' (no space, '+', "0x", "inf" or "nan" reach here).
// Only the static board binary takes this one; a shared libstdc++ keeps its own.
#include <cerrno>
#include <charconv>
#include <cstring>

namespace std {
// NOLINTNEXTLINE(cert-dcl58-cpp): replaces libstdc++'s definition at the static link, on purpose
from_chars_result from_chars(const char* first, const char* last, double& value, chars_format) noexcept {
  char text[160];  // a float toml++ hands over is at most 128 characters (its buffer)
  const size_t n = static_cast<size_t>(last - first);
  if (n == 0 || n >= sizeof text || *first == ' ' || *first == '+') return {first, errc::invalid_argument};
  memcpy(text, first, n);
  text[n] = '\0';
  char* end = nullptr;
  errno = 0;
  const double v = strtod(text, &end);
  if (end == text) return {first, errc::invalid_argument};
  if (errno == ERANGE) return {first + (end - text), errc::result_out_of_range};
  value = v;
  return {first + (end - text), errc{}};
}
}  // namespace std
#endif
