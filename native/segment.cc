// POSIX shared-memory segments: create (exclusive, reserved with posix_fallocate), size, grow, unlink, list,
// and map as a SharedArrayBuffer. Each call opens and closes its own descriptor: a mapping does not need one.
// Every mapping is registered with the SIGBUS handler (sigbus.h), so a segment truncated under it faults that
// mapping instead of killing the process; shmFaulted and segmentFaultEpoch let JavaScript notice.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fstream>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "modules.h"
#include "shared_buffer.h"
#include "sigbus.h"
#include "unique_fd.h"

namespace shmx {
namespace {

constexpr off_t kReserveChunk = 64 << 20;  // posix_fallocate step: bounded work per call, errors stop early

std::string Path(const std::string& name) { return "/" + name; }

// Reserves [from, to) in chunks so that an exhausted /dev/shm shows as ENOSPC here, never as SIGBUS on touch.
int Reserve(int fd, off_t from, off_t to) {
  for (off_t at = from; at < to; at += kReserveChunk) {
    off_t len = std::min(kReserveChunk, to - at);
    int err = posix_fallocate(fd, at, len);
    if (err != 0) return err;
  }
  return 0;
}

// Bytes of memory shared memory may still take: MemAvailable + SwapFree, less a headroom of 1/16 of RAM so
// that a reservation never leaves the machine on the edge of the OOM killer. -1 when unknown.
int64_t MemoryAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0, available = 0, total = 0;
  int found = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:" || key == "SwapFree:") available += kib, found++;
    if (key == "MemTotal:") total = kib, found++;
  }
  return found == 3 ? (available - total / 16) * 1024 : -1;
}

// Refuses a reservation that cannot succeed before making it. posix_fallocate on tmpfs does not fail when
// memory runs out: it pushes the machine into the OOM killer. Returns 0, ENOSPC or ENOMEM (with `hint`).
int CheckRoom(int fd, off_t bytes, std::string* hint) {
  struct statvfs fs;
  if (fstatvfs(fd, &fs) == 0) {
    int64_t room = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    if (bytes > room) {
      *hint = "/dev/shm cannot hold " + std::to_string(bytes) + " more bytes (" + std::to_string(room) + " free)";
      return ENOSPC;
    }
  }
  int64_t memory = MemoryAvailable();
  if (memory >= 0 && bytes > memory) {
    *hint = "reserving " + std::to_string(bytes) + " bytes of shared memory would exceed the " +
            std::to_string(memory) + " bytes of memory available (tmpfs pages live in RAM)";
    return ENOMEM;
  }
  return 0;
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  int64_t size = 0, mode = 0;
  if (!ArgName(info, 0, &name) || !ArgInteger(info, 1, "size", 1, kMaxBytes, &size) ||
      !ArgInteger(info, 2, "mode", 0, 0777, &mode)) {
    return env.Undefined();
  }
  UniqueFd fd(shm_open(Path(name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode)));
  if (!fd.Valid()) throw ErrnoError(env, errno, "shm_open", name);
  // shm_open applies the umask; the permission level asked for is exact.
  int err = 0;
  const char* call = nullptr;
  std::string hint;
  if (fchmod(fd.Get(), static_cast<mode_t>(mode)) != 0) {
    err = errno, call = "fchmod";
  } else if ((err = CheckRoom(fd.Get(), size, &hint)) != 0) {
    call = "posix_fallocate";
  } else if (ftruncate(fd.Get(), size) != 0) {
    err = errno, call = "ftruncate";
  } else if ((err = Reserve(fd.Get(), 0, size)) != 0) {
    call = "posix_fallocate";
    if (err == ENOSPC) hint = "/dev/shm cannot hold " + std::to_string(size) + " more bytes";
  }
  if (call) {
    shm_unlink(Path(name).c_str());  // a half-made segment must not outlive the failed call
    throw ErrnoError(env, err, call, name, hint);
  }
  return env.Undefined();
}

// Opens an existing segment read-write and returns its size.
UniqueFd OpenExisting(Napi::Env env, const std::string& name, off_t* size) {
  UniqueFd fd(shm_open(Path(name).c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!fd.Valid()) throw ErrnoError(env, errno, "shm_open", name);
  struct stat st;
  if (fstat(fd.Get(), &st) != 0) throw ErrnoError(env, errno, "fstat", name);
  *size = st.st_size;
  return fd;
}

Napi::Value Size(const Napi::CallbackInfo& info) {
  std::string name;
  if (!ArgName(info, 0, &name)) return info.Env().Undefined();
  off_t size = 0;
  OpenExisting(info.Env(), name, &size);
  return Napi::Number::New(info.Env(), static_cast<double>(size));
}

Napi::Value Grow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  int64_t size = 0;
  if (!ArgName(info, 0, &name) || !ArgInteger(info, 1, "size", 1, kMaxBytes, &size)) return env.Undefined();
  off_t current = 0;
  UniqueFd fd = OpenExisting(env, name, &current);
  if (size <= current) return env.Undefined();
  // Reserve first, then extend: a failed reservation leaves the visible size unchanged.
  std::string hint;
  int err = CheckRoom(fd.Get(), size - current, &hint);
  if (err == 0 && (err = Reserve(fd.Get(), current, size)) == ENOSPC) {
    hint = "/dev/shm cannot hold " + std::to_string(size - current) + " more bytes";
  }
  if (err != 0) {
    if (ftruncate(fd.Get(), current) != 0) { /* size is unchanged by fallocate failure in practice */ }
    throw ErrnoError(env, err, "posix_fallocate", name, hint);
  }
  if (ftruncate(fd.Get(), size) != 0) throw ErrnoError(env, errno, "ftruncate", name);
  return env.Undefined();
}

// Gives a segment's pages back to the kernel now (FALLOC_FL_PUNCH_HOLE), size unchanged. Memory of a segment
// stays allocated while any process maps it, even after unlink; a closed session's mappings may live on until
// a garbage collection, so its creator punches the pages out first. Mappings then read zeros.
Napi::Value ReleasePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgName(info, 0, &name)) return env.Undefined();
  UniqueFd fd(shm_open(Path(name).c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!fd.Valid()) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    throw ErrnoError(env, errno, "shm_open", name);
  }
  struct stat st;
  if (fstat(fd.Get(), &st) != 0) throw ErrnoError(env, errno, "fstat", name);
  if (st.st_size > 0 && fallocate(fd.Get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size) != 0) {
    throw ErrnoError(env, errno, "fallocate", name);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgName(info, 0, &name)) return env.Undefined();
  if (shm_unlink(Path(name).c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, errno, "shm_unlink", name);
}

Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgName(info, 0, &name)) return env.Undefined();
  off_t size = 0;
  UniqueFd fd = OpenExisting(env, name, &size);
  if (size <= 0) throw CodeError(env, "EEMPTY", "mmap", name, "segment '" + name + "' has size 0");
  void* data = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd.Get(), 0);
  if (data == MAP_FAILED) throw ErrnoError(env, errno, "mmap", name);
  if (!RegisterMapping(data, static_cast<size_t>(size))) {
    munmap(data, static_cast<size_t>(size));
    throw CodeError(env, "EMAPPINGS", "mmap", name,
                    "this process has too many shared mappings for the truncation registry");
  }
  return NewMappedSharedBuffer(env, data, static_cast<size_t>(size));
}

// True when the mapping behind `buffer` (from shmMap) was truncated under us and now reads zero pages.
Napi::Value Faulted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (info.Length() < 1 || !SharedBufferData(info[0], &data, &length)) {
    throw Napi::TypeError::New(env, "buffer must be a SharedArrayBuffer");
  }
  return Napi::Boolean::New(env, MappingFaulted(data));
}

}  // namespace

// Lists names in a directory that start with `prefix` (shared with the message-queue listing).
std::vector<std::string> ListDirectory(Napi::Env env, const char* dir, const std::string& prefix) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir), closedir);  // closed on every path out
  if (!d) throw ErrnoError(env, errno, "opendir", dir);
  while (struct dirent* entry = readdir(d.get())) {
    std::string n = entry->d_name;
    if (n == "." || n == "..") continue;
    if (n.compare(0, prefix.size(), prefix) == 0) names.push_back(n);
  }
  return names;
}

Napi::Array ToArray(Napi::Env env, const std::vector<std::string>& names) {
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

namespace {
Napi::Value List(const Napi::CallbackInfo& info) {
  std::string prefix;
  if (!ArgPrefix(info, 0, &prefix)) return info.Env().Undefined();
  return ToArray(info.Env(), ListDirectory(info.Env(), "/dev/shm", prefix));
}
}  // namespace

void InitSegments(Napi::Env env, Napi::Object exports) {
  exports.Set("shmCreate", Napi::Function::New(env, Create, "shmCreate"));
  exports.Set("shmSize", Napi::Function::New(env, Size, "shmSize"));
  exports.Set("shmGrow", Napi::Function::New(env, Grow, "shmGrow"));
  exports.Set("shmUnlink", Napi::Function::New(env, Unlink, "shmUnlink"));
  exports.Set("shmReleasePages", Napi::Function::New(env, ReleasePages, "shmReleasePages"));
  exports.Set("shmList", Napi::Function::New(env, List, "shmList"));
  exports.Set("shmMap", Napi::Function::New(env, Map, "shmMap"));
  exports.Set("shmFaulted", Napi::Function::New(env, Faulted, "shmFaulted"));
  // One process-wide word per environment's view: the handler bumps word 0 for every faulted mapping.
  exports.Set("segmentFaultEpoch", NewStaticSharedBuffer(env, FaultEpochWords(), kEpochWords * sizeof(int32_t)));
  exports.Set("sigbusHandler", Napi::Boolean::New(env, InstallTruncationHandler()));
  exports.Set("sharedBufferBackend", Napi::String::New(env, SharedBufferBackend()));
}

}  // namespace shmx
