// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value ~0, final xor ~0, so
// crc32c(b, nb, crc32c(a, na)) == crc32c(a || b). The zinc store keeps one per 4 KiB page.
//
// Two implementations, chosen once at run time:
// - SSE4.2: the crc32 instruction, on three independent streams at once (the instruction has
//   a latency of 3 cycles and a throughput of 1), the three partial CRCs combined with a
//   "shift by n zero bytes" operator from precomputed tables (Mark Adler's crc32c.c scheme);
// - portable: slicing-by-8 tables.
// Both are exposed in zinc::partition::detail for the tests (which check they agree).
#include "partition/crc32c.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define ZINC_CRC32C_X86 1
#endif

namespace zinc::partition {

namespace detail {
uint32_t crc32c_portable(const void* data, size_t bytes, uint32_t crc);
uint32_t crc32c_sse42(const void* data, size_t bytes, uint32_t crc);  // needs SSE4.2
bool crc32c_has_sse42();
}  // namespace detail

namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// ---- slicing-by-8 ---------------------------------------------------------------------

struct SliceTables {
  uint32_t t[8][256];
};

constexpr SliceTables make_slice_tables() {
  SliceTables s{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1u)));
    s.t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      s.t[k][b] = (s.t[k - 1][b] >> 8) ^ s.t[0][s.t[k - 1][b] & 0xFFu];
    }
  }
  return s;
}

constexpr SliceTables kSlice = make_slice_tables();

// ---- shifting a raw CRC register past n zero bytes (GF(2) linear operator) -------------

// mat[i] = image of bit i.
uint32_t gf2_times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (int i = 0; vec; ++i, vec >>= 1) {
    if (vec & 1u) sum ^= mat[i];
  }
  return sum;
}

void gf2_square(uint32_t* square, const uint32_t* mat) {
  for (int i = 0; i < 32; ++i) square[i] = gf2_times(mat, mat[i]);
}

// The operator that advances the raw register over `bytes` zero bytes, as 4 byte tables:
// shift(crc) = t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][...] ^ t[3][crc >> 24].
struct ShiftTable {
  uint32_t t[4][256];
};

void make_shift_table(size_t bytes, ShiftTable* out) {
  uint32_t op[32], sq[32];
  // One zero bit: register >> 1, xor poly when the bit shifted out was 1.
  op[0] = kPoly;
  for (int i = 1; i < 32; ++i) op[i] = 1u << (i - 1);
  // Square up to one zero byte (8 bits).
  gf2_square(sq, op);  // 2 bits
  gf2_square(op, sq);  // 4 bits
  gf2_square(sq, op);  // 8 bits: sq = one byte
  // result = sq^bytes by binary powering.
  uint32_t result[32];
  for (int i = 0; i < 32; ++i) result[i] = 1u << i;  // identity
  uint32_t base[32];
  std::memcpy(base, sq, sizeof base);
  for (size_t n = bytes; n; n >>= 1) {
    if (n & 1u) {
      uint32_t tmp[32];
      for (int i = 0; i < 32; ++i) tmp[i] = gf2_times(base, result[i]);
      std::memcpy(result, tmp, sizeof result);
    }
    if (n > 1) {
      gf2_square(sq, base);
      std::memcpy(base, sq, sizeof base);
    }
  }
  for (int k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) out->t[k][b] = gf2_times(result, b << (8 * k));
  }
}

#ifdef ZINC_CRC32C_X86

// Three-stream block sizes: a 4 KiB page is 5 short triples (3 x 256) + 256 tail bytes;
// long buffers go through long triples first.
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

struct ShiftTables {
  ShiftTable long_shift, short_shift;
  ShiftTables() {
    make_shift_table(kLong, &long_shift);
    make_shift_table(kShort, &short_shift);
  }
};

const ShiftTables& shift_tables() {
  static const ShiftTables tables;
  return tables;
}

inline uint32_t shift(const ShiftTable& s, uint32_t crc) {
  return s.t[0][crc & 0xFFu] ^ s.t[1][(crc >> 8) & 0xFFu] ^ s.t[2][(crc >> 16) & 0xFFu] ^
         s.t[3][crc >> 24];
}

__attribute__((target("sse4.2"))) uint64_t triple(const uint8_t* p, size_t block,
                                                  const ShiftTable& s, uint64_t crc0) {
  uint64_t crc1 = 0, crc2 = 0;
  const uint8_t* end = p + block;
  for (; p < end; p += 8) {
    crc0 = _mm_crc32_u64(crc0, load_le64(p));
    crc1 = _mm_crc32_u64(crc1, load_le64(p + block));
    crc2 = _mm_crc32_u64(crc2, load_le64(p + 2 * block));
  }
  crc0 = shift(s, static_cast<uint32_t>(crc0)) ^ crc1;
  return shift(s, static_cast<uint32_t>(crc0)) ^ crc2;
}

#endif  // ZINC_CRC32C_X86

}  // namespace

namespace detail {

uint32_t crc32c_portable(const void* data, size_t bytes, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  const auto& t = kSlice.t;
  uint32_t c = ~crc;
  for (; bytes && (reinterpret_cast<uintptr_t>(p) & 7u); --bytes) {
    c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  }
  for (; bytes >= 8; bytes -= 8, p += 8) {
    uint64_t v = load_le64(p) ^ c;
    c = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^ t[4][(v >> 24) & 0xFF] ^
        t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^ t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
  }
  for (; bytes; --bytes) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  return ~c;
}

#ifdef ZINC_CRC32C_X86

bool crc32c_has_sse42() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const void* data, size_t bytes,
                                                        uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  for (; bytes && (reinterpret_cast<uintptr_t>(p) & 7u); --bytes) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  }
  if (bytes >= 3 * kShort) {
    const ShiftTables& s = shift_tables();
    for (; bytes >= 3 * kLong; bytes -= 3 * kLong, p += 3 * kLong) {
      c = triple(p, kLong, s.long_shift, c);
    }
    for (; bytes >= 3 * kShort; bytes -= 3 * kShort, p += 3 * kShort) {
      c = triple(p, kShort, s.short_shift, c);
    }
  }
  for (; bytes >= 8; bytes -= 8, p += 8) c = _mm_crc32_u64(c, load_le64(p));
  for (; bytes; --bytes) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}

#else

bool crc32c_has_sse42() { return false; }
uint32_t crc32c_sse42(const void* data, size_t bytes, uint32_t crc) {
  return crc32c_portable(data, bytes, crc);
}

#endif  // ZINC_CRC32C_X86

}  // namespace detail

uint32_t crc32c(const void* data, size_t bytes, uint32_t crc) {
  static const auto impl =
      detail::crc32c_has_sse42() ? &detail::crc32c_sse42 : &detail::crc32c_portable;
  return impl(data, bytes, crc);
}

}  // namespace zinc::partition
