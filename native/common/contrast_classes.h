// Who is whose positive, as every backend sees it: the class of each own row and of each
// contrast row, and the contrast row that is an anchor row itself (docs/LOSS.md, "The
// contrast set"). Host code; O(B + M).
#pragma once

#include <cstdint>
#include <vector>

namespace supcon {

struct ContrastClasses {
  std::vector<int32_t> rowClass;    // [B]: the row's label, or its sample (its mask row)
  std::vector<int32_t> colClass;    // [M] with a contrast set (empty without one)
  std::vector<int32_t> selfColumn;  // [B]: the contrast row that is the row itself, or -1
};

// Rows are view-major (r = view * n + sample). Without a contrast set (m < 0) the contrast
// rows are the own rows. With one: M = (withAnchors ? B : 0) + m columns; a column's class
// is the own row's class, then the contrast label, the mask column (labels and mask are
// exclusive), or -1, except that with neither labels nor mask the contrast rows named by
// `positions` take their anchor's sample (the other views of a sample stay its positives).
inline ContrastClasses contrastClasses(int64_t n, int64_t v, const int32_t* labels, bool hasMask, int64_t m,
                                       const int32_t* contrastLabels, const int32_t* positions, bool withAnchors) {
  const int64_t B = n * v;
  const bool symmetric = m < 0;
  const int64_t own = symmetric || withAnchors ? B : 0;
  ContrastClasses c;
  c.rowClass.resize(static_cast<size_t>(B));
  c.selfColumn.resize(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r) {
    const int64_t sample = r % n, view = r / n;
    c.rowClass[r] = labels != nullptr && !hasMask ? labels[sample] : static_cast<int32_t>(sample);
    c.selfColumn[r] = own > 0 ? static_cast<int32_t>(r) : positions != nullptr ? positions[sample * v + view] : -1;
  }
  if (symmetric) return c;
  c.colClass.resize(static_cast<size_t>(own + m));
  for (int64_t k = 0; k < own; ++k) c.colClass[k] = c.rowClass[k];
  for (int64_t e = 0; e < m; ++e)
    c.colClass[own + e] = hasMask               ? static_cast<int32_t>((withAnchors ? n : 0) + e)
                          : labels != nullptr ? contrastLabels[e]
                                              : -1;
  if (!hasMask && labels == nullptr && own == 0)
    for (int64_t r = 0; r < B; ++r)
      if (c.selfColumn[r] >= 0) c.colClass[c.selfColumn[r]] = c.rowClass[r];
  return c;
}

}  // namespace supcon
