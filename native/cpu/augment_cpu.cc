#include "augment_cpu.h"

#include <algorithm>
#include <string>
#include <vector>

#include "isa.h"
#include "thread_pool.h"

namespace supcon::cpu {

const AugmentKernelTable& activeAugmentKernels() { return SUPCON_ACTIVE_TABLE(kAugmentKernels); }

void augmentBatch(const augment::Batch& batch, int threads) {
  const AugmentKernelTable& kernels = activeAugmentKernels();
  const int64_t total = batch.n * batch.views;
  if (total == 0) return;
  const int workers = std::max(1, threads);
  const int64_t perBlock = std::max<int64_t>(1, std::min<int64_t>(16, total / (4 * workers)));
  const int64_t blocks = (total + perBlock - 1) / perBlock;
  const int64_t hw = static_cast<int64_t>(batch.outH) * batch.outW;
  const int64_t plane = (hw + 15) / 16 * 16;
  std::vector<AugmentScratch> scratch(static_cast<size_t>(workers));
  ThreadPool::instance().parallelFor(blocks, workers, [&](int64_t block, int worker) {
    AugmentScratch& s = scratch[static_cast<size_t>(worker)];
    if (s.plane == 0) {
      s.plane = plane;
      s.a = AlignedBuffer<float>(static_cast<size_t>(plane * batch.channels));
      s.b = AlignedBuffer<float>(static_cast<size_t>(plane * batch.channels));
      // Sized here, in portable code: the kernels (compiled per instruction set) only index.
      s.xTaps.resize(static_cast<size_t>(batch.outW));
      s.yTaps.resize(static_cast<size_t>(batch.outH));
      s.row = AlignedBuffer<float>(static_cast<size_t>(batch.inW));
    }
    const int64_t first = block * perBlock;
    kernels.run(batch, first, std::min(perBlock, total - first), s);
  });
}

}  // namespace supcon::cpu
