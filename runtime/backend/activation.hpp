// The element-wise activations the model families use (config.json's hidden_act).
#pragma once

namespace zinc::runtime {

enum class Activation { Silu, Relu, Gelu, GeluTanh };

}  // namespace zinc::runtime
