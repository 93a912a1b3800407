// Internal to cpu_attention: the constants of the softmax's exp, shared by the AVX2
// (cpu_attention_avx2.cpp) and AVX-512 (cpu_attention_avx512.cpp) softmax loops, which
// evaluate the same polynomial with the same operations, so that an element's weight is
// the same bits under either: Cephes' expf for x <= 0 (about 1 ulp), x < kMin giving 0
// (exp(-87) is 1.6e-38: nothing next to the softmax's largest term, which is 1).
//   fx = floor(x * log2(e) + 0.5);  r = x - fx * ln2 (in two parts);
//   exp(x) = 2^fx * (((((P0 r + P1) r + P2) r + P3) r + P4) r + P5) r^2 + r + 1)
#pragma once

namespace zinc::runtime::detail::softmax_exp {

constexpr float kMin = -87.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace zinc::runtime::detail::softmax_exp
