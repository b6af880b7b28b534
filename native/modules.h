// Module initializers, one per native file, and small helpers shared between them.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

namespace shmx {

void InitSegments(Napi::Env env, Napi::Object exports);
void InitMessageQueues(Napi::Env env, Napi::Object exports);
void InitProcessFacts(Napi::Env env, Napi::Object exports);
void InitFutex(Napi::Env env, Napi::Object exports);
void InitDoorbells(Napi::Env env, Napi::Object exports);
void InitFileLocks(Napi::Env env, Napi::Object exports);

// Names in `dir` starting with `prefix`.
std::vector<std::string> ListDirectory(Napi::Env env, const char* dir, const std::string& prefix);
Napi::Array ToArray(Napi::Env env, const std::vector<std::string>& names);

}  // namespace shmx
