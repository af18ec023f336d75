// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
// a counter-based generator, so any (seed, epoch, sample, view) stream is reachable in O(1)
// on the host or on a device, and no generator state has to travel between them.
#pragma once

#include <cstdint>

#include "supcon_types.h"

namespace supcon {

struct Philox4x32 {
  uint32_t v[4];
};

SUPCON_HD Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// The random stream of one (seed, epoch, sample, view): counter words are
// (block, sample, epoch, view) and the key is the 64-bit seed, so every view of every
// sample of every epoch has its own stream of 2^32 blocks of four words.
class PhiloxStream {
 public:
  SUPCON_HD PhiloxStream(uint64_t seed, uint32_t epoch, uint32_t sample, uint32_t view)
      : key0_(static_cast<uint32_t>(seed)), key1_(static_cast<uint32_t>(seed >> 32)),
        sample_(sample), epoch_(epoch), view_(view) {}

  SUPCON_HD uint32_t nextU32() {
    if (used_ == 4) {
      block_ = philox4x32_10(Philox4x32{{counter_, sample_, epoch_, view_}}, key0_, key1_);
      ++counter_;
      used_ = 0;
    }
    return block_.v[used_++];
  }
  // Uniform in [0, 1) with 53 random bits.
  SUPCON_HD double uniform() {
    const uint64_t a = nextU32() >> 5, b = nextU32() >> 6;
    return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) * (1.0 / 9007199254740992.0);
  }
  SUPCON_HD double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n >= 1 (rejection sampling: no modulo bias).
  SUPCON_HD uint32_t below(uint32_t n) {
    const uint32_t limit = 0xFFFFFFFFu - (0xFFFFFFFFu % n);
    for (;;) {
      const uint32_t x = nextU32();
      if (x < limit) return x % n;
    }
  }
  // True with probability p.
  SUPCON_HD bool bernoulli(double p) { return uniform() < p; }

 private:
  uint32_t key0_, key1_, sample_, epoch_, view_;
  uint32_t counter_ = 0;
  uint32_t used_ = 4;
  Philox4x32 block_{{0, 0, 0, 0}};
};

}  // namespace supcon
