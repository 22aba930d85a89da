// edgegw's command line. The commands' work lives in the libraries; this file only parses
// arguments, calls them and turns their results into exit codes.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "edgegw/build_info.hpp"
#include "event/loop.hpp"
#include "event/signals.hpp"
#include "gateway/gateway.hpp"
#include "gateway/selftest.hpp"
#include "gateway/service.hpp"
#include "observe/control.hpp"
#include "util/log.hpp"
#ifdef EDGEGW_TEST_DISK
#include <cstdlib>
#include <memory>

#include "spool/test_disk.hpp"
#endif

namespace {

constexpr const char* k_default_config = "/etc/edgegw/edgegw.toml";

constexpr const char* k_usage =
    "usage: edgegw run --config FILE          run the gateway daemon (also: edgegw --config FILE)\n"
    "       edgegw check-config --config FILE validate a config: exit 0 valid, 1 invalid\n"
    "       edgegw selftest --config FILE [--json] [--report-only]\n"
    "                                         measure the board and the running daemon against the budgets\n"
    "       edgegw status [--json] [--config FILE | --socket PATH]\n"
    "                                         ask the running daemon (default --config /etc/edgegw/edgegw.toml)\n"
    "       edgegw --version\n";

// `edgegw status`: the daemon's socket is gateway.control_socket of its config.
int status(std::string config_path, std::string socket_path, bool json) {
  if (socket_path.empty()) {
    if (config_path.empty()) config_path = k_default_config;
    std::vector<std::string> errors;
    auto cfg = edgegw::config::load(config_path, errors);
    if (!cfg) {
      for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
      std::fprintf(stderr, "edgegw: status needs the daemon's configuration (--config FILE) or --socket PATH\n");
      return 1;
    }
    socket_path = cfg->gateway.control_socket;
  }
  std::string reply, error;
  if (!edgegw::observe::query_status(socket_path, json, reply, error)) {
    std::fprintf(stderr, "edgegw: %s\n", error.c_str());
    return 1;
  }
  std::fputs(reply.c_str(), stdout);
  return 0;
}

int usage_error(const char* what) {
  std::fprintf(stderr, "edgegw: %s\n%s", what, k_usage);
  return 2;
}

int check_config(const std::string& path) {
  std::vector<std::string> errors;
  auto cfg = edgegw::config::load(path, errors);
  for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  if (!cfg) return 1;
  for (const std::string& w : cfg->warnings) std::fprintf(stderr, "%s\n", w.c_str());
  const std::string downlink =
      cfg->downlink.rules.empty() ? "" : ", downlink " + std::to_string(cfg->downlink.rules.size()) + " rules";
  std::printf("%s: valid (gateway %s, ingest %s, uplink %s%s, pool %u x %u bytes%s)\n", path.c_str(),
              cfg->gateway.id.c_str(), cfg->ingest.url.text.c_str(), cfg->uplink.url.text.c_str(),
              cfg->uplink.urls.size() > 1 ? " and fallbacks" : "", cfg->pool.slots, cfg->pool.slot_bytes,
              downlink.c_str());
  return 0;
}

// SIGTERM/SIGINT: a graceful stop (a second signal does not hurry it; SIGKILL does).
// SIGHUP: the TLS and password files read again (gateway/reload.hpp).
class Signals final : public edgegw::event::SignalWatcher::Handler {
 public:
  Signals(edgegw::gateway::Gateway& gw, edgegw::gateway::Service& service) : m_gw(gw), m_service(service) {}
  void on_signal(int signo) override {
    if (signo == SIGHUP) {
      EGW_LOG(notice, "received SIGHUP");
      m_service.reload(m_gw);
      return;
    }
    EGW_LOG(notice, "received %s", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    m_service.stopping();
    m_gw.shutdown(std::chrono::seconds(2));
  }

 private:
  edgegw::gateway::Gateway& m_gw;
  edgegw::gateway::Service& m_service;
};

int run(const std::string& path) {
  std::vector<std::string> errors;
  auto cfg = edgegw::config::load(path, errors);
  for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  if (!cfg) return 1;
  edgegw::util::set_log_level(cfg->gateway.log_level);
  for (const std::string& w : cfg->warnings) EGW_LOG(warning, "%s", w.c_str());
  edgegw::event::Loop loop;
#ifdef EDGEGW_TEST_DISK
  // The test-only build edgegw-test-disk (src/CMakeLists.txt): the spool's disk slowed
  // or stalled as $EDGEGW_TEST_DISK says (spool/test_disk.hpp).
  std::unique_ptr<edgegw::spool::TestDisk> disk;
  if (const char* spec = std::getenv("EDGEGW_TEST_DISK")) {
    std::string why;
    disk = edgegw::spool::TestDisk::parse(spec, why);
    if (!disk) {
      std::fprintf(stderr, "edgegw: EDGEGW_TEST_DISK: %s\n", why.c_str());
      return 1;
    }
    EGW_LOG(warning, "test build: the spool's disk is %s", spec);
  }
  edgegw::gateway::Gateway gw(loop, *cfg, disk.get());
#else
  edgegw::gateway::Gateway gw(loop, *cfg);
#endif
  edgegw::gateway::Service service(loop, *cfg, gw);
  Signals handler(gw, service);
  edgegw::event::SignalWatcher signals(loop, handler);
  std::string error;
  if (!gw.start(error)) {
    std::fprintf(stderr, "edgegw: %s\n", error.c_str());
    return 1;
  }
  if (!service.start(error)) {
    std::fprintf(stderr, "edgegw: %s\n", error.c_str());
    return 1;
  }
  while (!gw.stopped()) {
    if (!loop.run_once(std::chrono::seconds(1))) {
      EGW_LOG(error, "event loop failed: %s", std::strerror(errno));
      return 1;
    }
  }
  return gw.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("no command given");
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("edgegw %s (%s, board %s)\n", edgegw::build::k_version, edgegw::build::k_system_processor,
                edgegw::build::k_board);
    return 0;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(k_usage, stdout);
    return 0;
  }

  std::string_view command = args[0];
  std::size_t first_option = 1;
  if (command.starts_with("--")) {  // "edgegw --config FILE" means run
    command = "run";
    first_option = 0;
  }
  std::string config_path, socket_path;
  bool json = false, enforce = true;
  for (std::size_t i = first_option; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) config_path = std::string(args[++i]);
    else if (args[i].starts_with("--config=")) config_path = std::string(args[i].substr(9));
    else if (args[i] == "--socket" && i + 1 < args.size()) socket_path = std::string(args[++i]);
    else if (args[i] == "--json") json = true;
    else if (args[i] == "--report-only") enforce = false;
    else return usage_error(("unknown argument '" + std::string(args[i]) + "'").c_str());
  }

  if (command == "check-config") {
    if (config_path.empty()) return usage_error("check-config needs --config FILE");
    return check_config(config_path);
  }
  if (command == "run") {
    if (config_path.empty()) return usage_error("run needs --config FILE");
    return run(config_path);
  }
  if (command == "status") return status(config_path, socket_path, json);
  if (command == "selftest") {
    if (config_path.empty()) return usage_error("selftest needs --config FILE");
    std::vector<std::string> errors;
    auto cfg = edgegw::config::load(config_path, errors);
    for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    if (!cfg) return 2;
    return edgegw::gateway::run_selftest(*cfg, {.json = json, .enforce = enforce});
  }
  return usage_error(("unknown command '" + std::string(command) + "'").c_str());
}
