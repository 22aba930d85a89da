// The edgegw command line, run as a user would (under the emulator for ARM builds).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace edgegw::test;

namespace {

std::vector<std::string> edgegw_cmd(std::vector<std::string> args) {
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

TEST(Cli, version_prints_the_version_and_exits_0) {
  std::string out;
  EXPECT_EQ(run(edgegw_cmd({"--version"}), &out), 0);
  EXPECT_TRUE(out.starts_with("edgegw 0.")) << out;
}

TEST(Cli, check_config_exits_0_for_the_example) {
  std::string out;
  EXPECT_EQ(
      run(edgegw_cmd({"check-config", "--config", std::string(EDGEGW_SOURCE_DIR) + "/docs/edgegw.example.toml"}), &out),
      0)
      << out;
  EXPECT_NE(out.find("valid"), std::string::npos);
}

TEST(Cli, check_config_exits_1_naming_file_line_and_key) {
  TempDir dir;
  std::string path = dir.write("bad.toml",
                               "[gateway]\nid = \"gw\"\n[ingest]\nurl = \"mqtt://127.0.0.1\"\ntopics = [\"a\"]\n"
                               "qos = 7\n[uplink]\nurl = \"mqtt://127.0.0.1:1884\"\n");
  std::string out;
  EXPECT_EQ(run(edgegw_cmd({"check-config", "--config", path}), &out), 1);
  EXPECT_NE(out.find(path + ":6: ingest.qos: must be from 0 to 2, not 7"), std::string::npos) << out;
}

// A configuration written for the old spool.batch_max_delay still works: check-config
// accepts it (exit 0) and says, at its line, what to write instead.
TEST(Cli, check_config_accepts_the_replaced_batch_max_delay_and_says_what_to_write) {
  std::ifstream in(std::string(EDGEGW_SOURCE_DIR) + "/docs/edgegw.example.toml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t at = text.find("commit_interval = ");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, text.find('\n', at) - at, "batch_max_delay = \"10ms\"");
  const long line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n');
  TempDir dir;
  const std::string path = dir.write("old.toml", text);
  std::string out;
  EXPECT_EQ(run(edgegw_cmd({"check-config", "--config", path}), &out), 0) << out;
  EXPECT_NE(out.find(path + ":" + std::to_string(line) + ": spool.batch_max_delay: replaced by spool.commit_interval"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("write commit_interval = \"10ms\""), std::string::npos) << out;
  EXPECT_NE(out.find(path + ": valid"), std::string::npos) << out;
}

TEST(Cli, check_config_exits_1_for_a_missing_file) {
  std::string out;
  EXPECT_EQ(run(edgegw_cmd({"check-config", "--config", "/nonexistent.toml"}), &out), 1);
  EXPECT_NE(out.find("/nonexistent.toml:0: file: cannot read"), std::string::npos) << out;
}

TEST(Cli, usage_errors_exit_2) {
  EXPECT_EQ(run(edgegw_cmd({})), 2);
  EXPECT_EQ(run(edgegw_cmd({"frobnicate"})), 2);
  EXPECT_EQ(run(edgegw_cmd({"check-config"})), 2);
}
