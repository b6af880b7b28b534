// Facts about processes: liveness, start time (to tell a reused pid from the original), the credentials of
// the peer of a Unix socket, the executable of a pid, and the CPU time of the calling thread.
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "args.h"
#include "errors.h"
#include "modules.h"

namespace shmx {
namespace {

constexpr double kMaxPid = 4194304;  // PID_MAX_LIMIT on 64-bit Linux

Napi::Value IsAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  if (!ArgInteger(info, 0, "pid", 1, kMaxPid, &pid)) return env.Undefined();
  if (kill(static_cast<pid_t>(pid), 0) == 0) return Napi::Boolean::New(env, true);
  if (errno == EPERM) return Napi::Boolean::New(env, true);  // exists, owned by someone else
  if (errno == ESRCH) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, errno, "kill", std::to_string(pid));
}

Napi::Value StartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  if (!ArgInteger(info, 0, "pid", 1, kMaxPid, &pid)) return env.Undefined();
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return env.Null();
  // Field 2 (comm) may hold spaces and parentheses: the fields after it start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) {
    throw CodeError(env, "EPROCFS", "read", "/proc/" + std::to_string(pid) + "/stat", "unexpected /proc stat format");
  }
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // rest begins at field 3 (state); starttime is field 22.
  for (int index = 3; index <= 22; index++) {
    if (!(rest >> field)) {
      throw CodeError(env, "EPROCFS", "read", "/proc/" + std::to_string(pid) + "/stat", "stat has too few fields");
    }
  }
  return Napi::Number::New(env, static_cast<double>(std::strtoull(field.c_str(), nullptr, 10)));
}

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = 0;
  if (!ArgInteger(info, 0, "fd", 0, INT_MAX, &fd)) return env.Undefined();
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw ErrnoError(env, errno, "getsockopt", "fd " + std::to_string(fd));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

Napi::Value ExecutablePath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  if (!ArgInteger(info, 0, "pid", 1, kMaxPid, &pid)) return env.Undefined();
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  char target[PATH_MAX];
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n < 0) {
    if (errno == ENOENT || errno == ESRCH) return env.Null();
    throw ErrnoError(env, errno, "readlink", link);
  }
  return Napi::String::New(env, target, static_cast<size_t>(n));
}

// CPU time of the calling thread in µs: what a worker_threads Worker has used itself (process.cpuUsage counts
// every thread; Node 20 has no per-thread figure).
Napi::Value ThreadCpuMicros(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) throw ErrnoError(env, errno, "clock_gettime", "CLOCK_THREAD_CPUTIME_ID");
  return Napi::Number::New(env, static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3);
}

}  // namespace

void InitProcessFacts(Napi::Env env, Napi::Object exports) {
  exports.Set("isAlive", Napi::Function::New(env, IsAlive, "isAlive"));
  exports.Set("processStartTime", Napi::Function::New(env, StartTime, "processStartTime"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("executablePath", Napi::Function::New(env, ExecutablePath, "executablePath"));
  exports.Set("threadCpuMicros", Napi::Function::New(env, ThreadCpuMicros, "threadCpuMicros"));
}

}  // namespace shmx
