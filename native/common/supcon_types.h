// The SupCon loss problem as every backend sees it (CPU and CUDA alike).
//
// Rows are view-major: row r = view * n + sample, B = n * v rows. Anchors are rows
// [0, numAnchors): all B rows for contrastMode 'all', the n rows of view 0 for 'one'.
// Exact semantics: docs/LOSS.md.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define SUPCON_HD __host__ __device__ __forceinline__
#else
#define SUPCON_HD inline
#endif

namespace supcon {

enum class ContrastMode : int32_t { All = 0, One = 1 };
enum class Variant : int32_t { Out = 0, In = 1 };
enum class Denominator : int32_t { All = 0, OnePositive = 1, OnlyNegatives = 2 };

struct LossOptions {
  float temperature = 0.07f;
  float baseTemperature = 0.07f;
  ContrastMode contrastMode = ContrastMode::All;
  Variant variant = Variant::Out;
  Denominator denominator = Denominator::All;
  bool normalize = false;
  bool excludeAnchorsWithoutPositives = false;
};

// How a positive column enters d l_i / d s_ij, given the row's stored a and b:
//   ConstOut:   -b                      ('out' with 'all' / 'onlyNegatives'; b = 1/n_i)
//   ExpIn:      -exp(s - b)             ('in'  with 'all' / 'onlyNegatives'; b = LSE over P(i))
//   SigmoidOut: -b * sigmoid(a - s)     ('out' with 'onePositive'; b = 1/n_i)
//   SigmoidIn:  -exp(log sigmoid(s - a) - b) * sigmoid(a - s)
//                                       ('in'  with 'onePositive'; b = log Q_i)
enum class PositiveTerm : int32_t { ConstOut = 0, ExpIn = 1, SigmoidOut = 2, SigmoidIn = 3 };

SUPCON_HD PositiveTerm positiveTermOf(Variant variant, Denominator den) {
  if (den == Denominator::OnePositive)
    return variant == Variant::Out ? PositiveTerm::SigmoidOut : PositiveTerm::SigmoidIn;
  return variant == Variant::Out ? PositiveTerm::ConstOut : PositiveTerm::ExpIn;
}

// What the streaming pass over the columns of one anchor row gathers. den* is an online
// log-sum-exp over den(i) (every j != i for 'all', the negatives otherwise), pos* one over
// P(i); p2a/p2b/p2c are what the second pass of 'onePositive' gathers (see finishRow).
struct RowAccum {
  float denMax, denSum;
  float posMax, posSum;
  float sumPos;  // sum of s_ip over P(i)
  float numPos;  // n_i
  float p2a, p2b, p2c;
};

// Per-row result of the forward pass. For anchor row i and column j != i, with
// s_ij = z_i . z_j / tau:
//   d l_i / d s_ij = [j in den(i)] * c * exp(s_ij - a)  +  [j in P(i)] * positiveTerm(s_ij)
// and g (set once the number of counted anchors is known) is d loss / d l_i.
struct RowResult {
  float loss;  // l_i
  float a, b, c;
  bool counts;  // has the terms its loss needs (counts in the mean when excluding)
  bool hasGradient;
};

// Turns one row's accumulators into l_i and its backward coefficients. numDen is the
// size of den(i). For 'onePositive' the accumulators must include the second pass:
// 'out': p2a = sum_p softplus(a - s_ip), p2b = sum_p sigmoid(a - s_ip);
// 'in':  an online log-sum-exp of y_p = log sigmoid(s_ip - a) = -softplus(a - s_ip):
//        p2a = its running maximum M, p2b = sum_p exp(y_p - M), and
//        p2c = sum_p exp(y_p - M) sigmoid(a - s_ip). So log Q = M + log p2b never underflows
//        (Q itself does when the positives are far below the negatives).
SUPCON_HD RowResult finishRow(const RowAccum& acc, float numDen, Variant variant,
                              Denominator den) {
  RowResult r{0.0f, 0.0f, 0.0f, 0.0f, false, false};
  const float n = acc.numPos;
  if (n <= 0.0f) return r;
  if (numDen <= 0.0f) {
    // 'onePositive' with no negatives: every term is log(1) = 0 and so is the gradient.
    // 'onlyNegatives' with no negatives: undefined; treated as an anchor with no positives.
    r.counts = den == Denominator::OnePositive;
    return r;
  }
  r.counts = true;
  r.hasGradient = true;
  r.a = acc.denMax + logf(acc.denSum);
  r.c = 1.0f;
  if (den == Denominator::OnePositive) {
    if (variant == Variant::Out) {
      r.loss = acc.p2a / n;
      r.b = 1.0f / n;
      r.c = acc.p2b / n;
    } else {
      r.b = acc.p2a + logf(acc.p2b);
      r.loss = logf(n) - r.b;
      r.c = acc.p2c / acc.p2b;
    }
  } else if (variant == Variant::Out) {
    r.loss = r.a - acc.sumPos / n;
    r.b = 1.0f / n;
  } else {
    r.b = acc.posMax + logf(acc.posSum);
    r.loss = r.a - r.b + logf(n);
  }
  return r;
}

SUPCON_HD float sigmoidScalar(float x) { return 1.0f / (1.0f + expf(-x)); }

SUPCON_HD float softplusScalar(float x) {
  return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

// d l_i / d s_ij for anchor i and column j != i (scalar form of the CPU SIMD kernel's
// pairCoefficient): the row's a, b, c, whether j is in den(i) / P(i), and the pair's weight
// (docs/LOSS.md, "Weighted masks"; a weight of 1 multiplies exactly).
SUPCON_HD float pairCoefficientScalar(PositiveTerm term, float s, float a, float b, float c,
                                      bool inDen, bool isPos, float w = 1.0f) {
  float g = inDen ? c * expf(s - a) : 0.0f;
  if (isPos) {
    float p = 0.0f;
    switch (term) {
      case PositiveTerm::ConstOut: p = b; break;
      case PositiveTerm::ExpIn: p = expf(s - b); break;
      case PositiveTerm::SigmoidOut: p = b * sigmoidScalar(a - s); break;
      case PositiveTerm::SigmoidIn: p = expf(-softplusScalar(a - s) - b) * sigmoidScalar(a - s); break;
    }
    g -= w * p;
  }
  return g;
}

}  // namespace supcon
