// What the benchmark programs share: timing, percentiles, running a peer's
// command (crun, skopeo, tar) the same way each time.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace berth::bench {

// One row of a results table: a name and its samples in milliseconds.
struct Figures {
  std::string name;
  std::vector<double> ms;
  // The p-quantile (0.5 = median), nearest rank.
  double Pct(double p) const;
};

double TimeMs(const std::function<void()>& f);

// posix_spawn + waitpid of args[0] (a path), stdin and stdout on /dev/null,
// stderr to `err`. The exit code, 128+signal, or -1 when it cannot start.
int Run(const std::vector<std::string>& args, const std::string& err = "/dev/null");

// The flag at argv[i], as {name, value}: "--name=value", or "--name value"
// (then argv[i+1] is consumed and i advanced) unless `name` is one of
// `switches`, flags that take no value.
std::pair<std::string, std::string> TakeFlag(int argc, char** argv, int& i,
                                             std::initializer_list<const char*> switches = {});

}  // namespace berth::bench
