-- lumen.io: array and weight files, installed into lumen by init.lua.
--
--   local t = lumen.read_npy("cam.npy")                    -- tensor, or nil, "cam.npy: reason"
--   lumen.write_npy("cam.npy", t)                           -- true, or nil, msg; raises if t is no tensor
--   local ws, meta = lumen.read_safetensors("model.safetensors")   -- {name = tensor}, {key = string}
--   lumen.write_safetensors("model.safetensors", ws, { format = "pt" })
--
-- .npy: reads <f4 <f8 |u1 |b1 as float32 and <i4 <i8 as int64 (versions 1.0-3.0, C order);
-- writes float32 as <f4 and int64 as <i8, byte for byte as numpy.save does.
-- safetensors: reads F32 F64 F16 BF16 as float32 and I64 I32 as int64; writes F32 and I64 with
-- sorted names. Integer values are stored as they are (no 1-based shift).
-- PNG and gzip live in lumen.core (png_load, png_save, gunzip_file); lumen.image builds on them.
local core = require "lumen.core"

return function(lumen)
  lumen.read_npy = core.npy_read
  lumen.write_npy = core.npy_write
  lumen.read_safetensors = core.safetensors_read
  lumen.write_safetensors = core.safetensors_write
end
