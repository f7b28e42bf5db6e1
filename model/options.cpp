#include "model/options.h"

#include <fmt/format.h>

#include "data_pipeline/errors.h"

namespace heed::model {

void ModelOptions::validate(const std::string& p) const {
  require_field(d_model >= 8 && d_model <= 8192, p, "d_model", fmt::format("must be in [8, 8192], got {}", d_model));
  require_field(heads >= 1 && heads <= d_model, p, "heads", fmt::format("must be in [1, d_model], got {}", heads));
  require_field(d_model % heads == 0, p, "heads", fmt::format("must divide d_model ({}), got {}", d_model, heads));
  require_field(encoder_layers >= 0 && encoder_layers <= 64, p, "encoder_layers",
                fmt::format("must be in [0, 64], got {}", encoder_layers));
  require_field(decoder_layers >= 0 && decoder_layers <= 64, p, "decoder_layers",
                fmt::format("must be in [0, 64], got {}", decoder_layers));
  require_field(ff_dim >= 1 && ff_dim <= 65536, p, "ff_dim", fmt::format("must be in [1, 65536], got {}", ff_dim));
  require_field(dropout >= 0.0 && dropout < 1.0, p, "dropout", fmt::format("must be in [0, 1), got {}", dropout));
  require_field(attention_dropout >= 0.0 && attention_dropout < 1.0, p, "attention_dropout",
                fmt::format("must be in [0, 1), got {}", attention_dropout));
  require_choice(activation, {"gelu", "relu"}, p, "activation");
  require_choice(norm, {"pre", "post"}, p, "norm");
  require_choice(positions, {"sinusoidal", "learned"}, p, "positions");
  require_field(max_positions >= 2 && max_positions <= (1 << 20), p, "max_positions",
                fmt::format("must be in [2, 1048576], got {}", max_positions));
  require_choice(pooling, {"mean", "first", "attention"}, p, "pooling");
}

}  // namespace heed::model
