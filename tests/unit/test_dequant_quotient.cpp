// The identity the CUDA dequantize kernels use for the asymmetric formats' q / s.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "catch.hpp"
#include "quant/dtype.hpp"

using namespace zinc::quant;

// The CUDA dequantize kernels (runtime/backend/cuda/dequantize.cu) compute the asymmetric
// formats' q / s with a reciprocal and one fma correction instead of a division per
// element; this is the identity they rely on, for every code and every fp16 scale.
TEST_CASE("quant: the reciprocal quotient equals q / s for every code and finite nonzero fp16 scale", "[quant]") {
  long checked = 0, differ = 0;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float s = f16_to_f32(static_cast<uint16_t>(bits));
    if (!std::isfinite(s) || s == 0.0f) continue;  // those groups divide
    volatile float r = 1.0f / s;                   // correctly rounded, as __frcp_rn
    for (int q = 0; q < 256; ++q) {
      const float a = static_cast<float>(q);
      volatile float y = a * r;
      const float e = std::fma(-y, s, a);
      const float fast = std::fma(e, r, y);
      volatile float want = a / s;
      differ += std::memcmp(&fast, const_cast<const float*>(&want), sizeof(float)) != 0;
      ++checked;
    }
  }
  CHECK(checked == (65536 - 2 - 2 - 2 * 1023) * 256L);  // minus +-0, +-inf and the NaNs
  CHECK(differ == 0);
}
