// Controls and counters of the emulated CUDA backend, for the binding and the emulator's
// own tests. Plain C++: no CUDA names.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace supcon::emu {

// Where a device buffer sits against its guard pages: flush with the page after it (reads
// and writes past the end fault at once) or with the page before it (reads and writes
// before the start fault). The slack on the other side is filled with a canary that is
// checked after every launch (and poisoned for AddressSanitizer in sanitizer builds).
enum class Guard { After, Before };

struct Settings {
  int schedules = 1;  // 1 to 3 thread schedules per launch; results must be the same bits
  Guard guard = Guard::After;
  uint64_t memoryBytes = uint64_t{4} << 30;  // the emulated device's memory
};

// From SUPCON_EMU_SCHEDULES, SUPCON_EMU_GUARD ('after' | 'before') and SUPCON_EMU_MEMORY_MB
// at the first use; configure() changes them for later launches and allocations.
Settings settings();
void configure(const Settings& s);

// Launches so far by kernel name (the name given at the launch site), and clears them.
std::map<std::string, int64_t> launchCounts(bool reset);

}  // namespace supcon::emu
