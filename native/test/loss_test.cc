// Native checks of the CPU loss against the float64 reference, for every instruction set
// this machine has; built with AddressSanitizer and UBSan by `npm run test:sanitize`.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../cpu/supcon_cpu.h"
#include "reference.h"

using namespace supcon;

namespace {

int failures = 0;
int checks = 0;

void expectClose(const char* what, const std::string& where, double got, double want,
                 double rel, double abs) {
  ++checks;
  if (!(std::fabs(got - want) <= abs + rel * std::fabs(want))) {
    if (++failures < 20)
      std::printf("FAIL %s %s: got %.9g want %.9g\n", what, where.c_str(), got, want);
  }
}

struct Case {
  int64_t n, v, d;
  int labelKinds;  // 0: SimCLR (no labels), -1: mask, else number of distinct labels
  LossOptions o;
};

// The gradient rebuilt from the forward pass's per-row statistics with the scalar
// pairCoefficientScalar (the form the CUDA kernels use), against the reference.
void checkScalarPath(const Case& c, const std::vector<float>& x, const int32_t* labels,
                     const uint8_t* mask, const float* weights, const reference::Result& ref) {
  auto state = cpu::lossForward(cpu::LossInput{x.data(), c.n, c.v, c.d, labels, weights}, c.o, 1);
  const cpu::LossState& s = *state;
  const PositiveTerm term = positiveTermOf(c.o.variant, c.o.denominator);
  const double scale = static_cast<double>(c.o.temperature) / c.o.baseTemperature;
  const double g = s.counted > 0 ? scale / static_cast<double>(s.counted) : 0.0;
  auto isPos = [&](int64_t i, int64_t j) {
    if (i == j) return false;
    const int64_t a = i % c.n, b = j % c.n;
    if (mask) return mask[a * c.n + b] != 0;
    if (labels) return labels[a] == labels[b];
    return a == b;
  };
  auto coef = [&](int64_t i, int64_t j, float sij) -> double {
    if (i >= s.numAnchors || !s.hasGrad[i]) return 0.0;
    const bool p = isPos(i, j);
    const bool den = c.o.denominator == Denominator::All || !p;
    return g * pairCoefficientScalar(term, sij, s.statA[i], s.statB[i], s.statC[i], den, p);
  };
  std::vector<double> dz(s.B * s.d, 0.0);
  for (int64_t i = 0; i < s.B; ++i)
    for (int64_t j = 0; j < s.B; ++j) {
      if (i == j) continue;
      float dot = 0.0f;
      for (int64_t k = 0; k < s.d; ++k) dot += s.zw[i * s.ld + k] * s.zw[j * s.ld + k];
      const float sij = dot / c.o.temperature;
      const double h = coef(i, j, sij) + coef(j, i, sij);
      for (int64_t k = 0; k < s.d; ++k) dz[i * s.d + k] += h * s.zw[j * s.ld + k] / c.o.temperature;
    }
  double gmax = 0;
  for (double v : ref.grad) gmax = std::max(gmax, std::fabs(v));
  for (int64_t r = 0; r < s.B; ++r) {
    const int64_t sample = r % c.n, view = r / c.n;
    double dot = 0.0;
    if (c.o.normalize && s.norms[r] > 1e-12f)
      for (int64_t k = 0; k < s.d; ++k) dot += s.zw[r * s.ld + k] * dz[r * s.d + k];
    for (int64_t k = 0; k < s.d; ++k) {
      double gk = dz[r * s.d + k];
      if (c.o.normalize) gk = (gk - s.zw[r * s.ld + k] * dot) / s.norms[r];
      expectClose("scalar-path grad", "", gk, ref.grad[(sample * c.v + view) * c.d + k], 1e-4, 1e-4 * gmax + 1e-6);
    }
  }
}

void runCase(const Case& c, std::mt19937& rng, int threads) {
  const int64_t B = c.n * c.v;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(B * c.d);
  for (auto& e : x) e = normal(rng) * (c.o.normalize ? 3.0f : 0.3f);
  std::vector<int32_t> labels(c.n);
  std::vector<uint8_t> mask(c.n * c.n);
  for (auto& l : labels) l = static_cast<int32_t>(rng() % std::max(1, c.labelKinds)) - 2;
  for (auto& m : mask) m = rng() % 3 == 0;
  const int32_t* lp = c.labelKinds > 0 ? labels.data() : nullptr;
  const uint8_t* mp = c.labelKinds < 0 ? mask.data() : nullptr;
  const std::vector<float> weights(mask.begin(), mask.end());
  const float* wp = mp != nullptr ? weights.data() : nullptr;

  std::vector<double> xd(x.begin(), x.end());
  const auto ref = reference::supcon(xd, c.n, c.v, c.d, lp, mp, c.o);
  checkScalarPath(c, x, lp, mp, wp, ref);
  for (const auto& name : cpu::availableKernels()) {
    cpu::selectKernels(name);
    cpu::LossInput in{x.data(), c.n, c.v, c.d, lp, wp};
    auto state = cpu::lossForward(in, c.o, threads);
    // Guard values around the output catch writes out of bounds.
    std::vector<float> grad(B * c.d + 32, 12345.0f);
    cpu::lossBackward(*state, 1.0f, grad.data() + 16, threads);
    char where[160];
    std::snprintf(where, sizeof where, "[%s n=%lld v=%lld d=%lld labels=%d mode=%d var=%d den=%d norm=%d excl=%d]",
                  name.c_str(), (long long)c.n, (long long)c.v, (long long)c.d, c.labelKinds,
                  (int)c.o.contrastMode, (int)c.o.variant, (int)c.o.denominator, c.o.normalize,
                  c.o.excludeAnchorsWithoutPositives);
    expectClose("loss", where, state->loss, ref.loss, 1e-5, 1e-6);
    double gmax = 0;
    for (double g : ref.grad) gmax = std::max(gmax, std::fabs(g));
    // The floor: where the exact gradient is 0 (one view pair, say), the symmetric
    // triangle's fixed shift leaves rounding of a few 1e-7 (docs/LOSS.md).
    for (int64_t i = 0; i < B * c.d; ++i)
      expectClose("grad", where, grad[16 + i], ref.grad[i], 1e-4, 1e-4 * gmax + 1e-6);
    for (int i = 0; i < 16; ++i) {
      expectClose("guard", where, grad[i], 12345.0f, 0, 0);
      expectClose("guard", where, grad[16 + B * c.d + i], 12345.0f, 0, 0);
    }
  }
}

// The contrast form against the plain loss: the own rows as the contrast set at their own
// positions give the same loss bits, and the gradients summed back give the same gradient;
// withAnchors with extra rows equals positions into [own rows, extra rows]. Guard values
// around both gradients catch writes out of bounds.
void runContrastCase(int64_t n, int64_t v, int64_t d, int64_t extra, const LossOptions& o, std::mt19937& rng, int threads) {
  const int64_t B = n * v, m = B + extra;
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> x(B * d), own(m * d);
  for (auto& e : x) e = normal(rng);
  std::vector<int32_t> labels(n), rowLabels(m), positions(B);
  for (auto& l : labels) l = static_cast<int32_t>(rng() % 3);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t sample = r % n, view = r / n;
    std::copy(x.begin() + (sample * v + view) * d, x.begin() + (sample * v + view + 1) * d, own.begin() + r * d);
    rowLabels[r] = labels[sample];
    positions[sample * v + view] = static_cast<int32_t>(r);
  }
  for (int64_t e = B * d; e < m * d; ++e) own[e] = normal(rng);
  for (int64_t c = B; c < m; ++c) rowLabels[c] = static_cast<int32_t>(rng() % 3);
  char where[128];
  std::snprintf(where, sizeof where, "[contrast n=%lld v=%lld d=%lld extra=%lld var=%d den=%d norm=%d]", (long long)n,
                (long long)v, (long long)d, (long long)extra, (int)o.variant, (int)o.denominator, o.normalize);
  auto guarded = [](int64_t count) { return std::vector<float>(count + 32, 12345.0f); };
  auto checkGuards = [&](const std::vector<float>& g, int64_t count) {
    for (int i = 0; i < 16; ++i) {
      expectClose("guard", where, g[i], 12345.0f, 0, 0);
      expectClose("guard", where, g[16 + count + i], 12345.0f, 0, 0);
    }
  };
  // Positions into [own rows, extra rows].
  const cpu::ContrastInput placed{own.data(), m, rowLabels.data(), positions.data(), false, true};
  auto a = cpu::lossForward(cpu::LossInput{x.data(), n, v, d, labels.data(), nullptr, &placed}, o, threads);
  std::vector<float> ga = guarded(B * d), ca = guarded(m * d);
  cpu::lossBackward(*a, 1.0f, ga.data() + 16, threads, ca.data() + 16);
  checkGuards(ga, B * d);
  checkGuards(ca, m * d);
  // withAnchors and the extra rows alone.
  const cpu::ContrastInput queue{own.data() + B * d, extra, rowLabels.data() + B, nullptr, true, true};
  auto b = cpu::lossForward(cpu::LossInput{x.data(), n, v, d, labels.data(), nullptr, &queue}, o, threads);
  std::vector<float> gb = guarded(B * d), cb = guarded(extra * d);
  cpu::lossBackward(*b, 1.0f, gb.data() + 16, threads, cb.data() + 16);
  checkGuards(gb, B * d);
  checkGuards(cb, extra * d);
  expectClose("withAnchors loss", where, b->loss, a->loss, 0, 0);
  double gmax = 0;
  for (int64_t e = 0; e < B * d; ++e) gmax = std::max(gmax, std::fabs(static_cast<double>(gb[16 + e])));
  for (int64_t r = 0; r < B; ++r) {
    const int64_t sample = r % n, view = r / n;
    for (int64_t k = 0; k < d; ++k) {
      const int64_t e = (sample * v + view) * d + k;
      expectClose("withAnchors grad", where, gb[16 + e], ga[16 + e] + ca[16 + r * d + k], 1e-5, 1e-6 * gmax);
    }
  }
  for (int64_t e = 0; e < extra * d; ++e)
    expectClose("queue grad", where, cb[16 + e], ca[16 + B * d + e], 0, 0);
  if (extra > 0) return;
  // No extra rows: the plain loss.
  auto plain = cpu::lossForward(cpu::LossInput{x.data(), n, v, d, labels.data(), nullptr}, o, threads);
  std::vector<float> gp(B * d);
  cpu::lossBackward(*plain, 1.0f, gp.data(), threads);
  // The same pairs; the batch-only kernel may visit each pair once (the symmetric triangle)
  // where the contrast kernel visits each ordered pair, so the sums round apart.
  expectClose("identity loss", where, a->loss, plain->loss, 2e-6, 0);
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  const ContrastMode modes[] = {ContrastMode::All, ContrastMode::One};
  const Variant variants[] = {Variant::Out, Variant::In};
  const Denominator dens[] = {Denominator::All, Denominator::OnePositive,
                              Denominator::OnlyNegatives};
  const int64_t shapes[][3] = {{37, 2, 3}, {5, 4, 17}, {1, 2, 8}, {33, 1, 5}, {70, 2, 20}};
  const int labelKinds[] = {0, 3, -1, 1};
  int cases = 0;
  for (const auto& sh : shapes)
    for (int lk : labelKinds)
      for (auto mode : modes)
        for (auto var : variants)
          for (auto den : dens) {
            Case c{sh[0], sh[1], sh[2], lk, LossOptions{}};
            c.o.temperature = 0.1f + 0.2f * (cases % 3);
            c.o.baseTemperature = 0.07f;
            c.o.contrastMode = mode;
            c.o.variant = var;
            c.o.denominator = den;
            c.o.normalize = cases % 2 == 0;
            c.o.excludeAnchorsWithoutPositives = cases % 5 == 1;
            runCase(c, rng, 1 + cases % 3);
            ++cases;
          }
  int contrastCases = 0;
  for (const auto& name : cpu::availableKernels()) {
    cpu::selectKernels(name);
    for (auto var : variants)
      for (auto den : dens) {
        LossOptions o;
        o.temperature = 0.2f;
        o.variant = var;
        o.denominator = den;
        o.normalize = contrastCases % 2 == 1;
        runContrastCase(13, 2, 7, 0, o, rng, 1 + contrastCases % 3);
        runContrastCase(9, 3, 19, 50, o, rng, 1 + contrastCases % 3);
        ++contrastCases;
      }
  }
  // Kernel selection rejects names this machine lacks.
  ++checks;
  try {
    cpu::selectKernels("no-such-isa");
    ++failures;
    std::printf("FAIL selectKernels accepted an unknown name\n");
  } catch (const ArgumentError&) {
  }
  std::printf("%d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
