// ctest fixture (FIXTURES_SETUP md_report_run): trains the run the report e2e tests inspect.
#include <cstdio>

#include "report_fixture.h"

int main() {
  const std::string err = mnist_dist::testing::build_report_fixture(true, nullptr);
  if (!err.empty()) {
    std::fprintf(stderr, "report fixture: %s\n", err.c_str());
    return 1;
  }
  std::printf("report fixture ready in %s\n", MD_REPORT_FIXTURE_DIR);
  return 0;
}
