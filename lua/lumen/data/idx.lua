-- lumen.data idx reader: the MNIST / Fashion-MNIST file format (big-endian header: two zero bytes, the
-- element type, the number of dimensions, then one uint32 size per dimension; then the data). Only
-- unsigned bytes (type 0x08), the type these datasets use, are read. Files may be gzipped.
local lumen = require "lumen"
local core = lumen.core

local M = {}

local function read_bytes(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local head = f:read(2)
  if head == "\31\139" then
    f:close()
    return core.gunzip_file(path)
  end
  local rest = f:read("a")
  f:close()
  return (head or "") .. (rest or "")
end

-- Copies `count` bytes of s from byte `first` into a new (count) tensor of dtype, each byte plus `add`.
local function bytes_to_tensor(s, first, count, dtype, add)
  local out = lumen.zeros({ count })
  if dtype == "int64" then out = out:long() end
  local chunk = 65536
  for start = 0, count - 1, chunk do
    local n = math.min(chunk, count - start)
    local vals = { s:byte(first + start, first + start + n - 1) }
    if add ~= 0 then for i = 1, n do vals[i] = vals[i] + add end end
    core.copy_(core.narrow0(out, start + 1, n), core.from_table(vals, dtype))
  end
  return out
end

-- read(path [, opts]) -> tensor shaped by the file's dimensions: float32 bytes, or with
-- opts.labels = true int64 bytes + 1 (1-based class ids). Returns nil, "path: reason" on failure.
function M.read(path, opts)
  opts = opts or {}
  local s, err = read_bytes(path)
  if not s then return nil, err end
  if #s < 4 then return nil, ("%s: not an idx file (%d bytes)"):format(path, #s) end
  local z1, z2, ty, ndim = s:byte(1, 4)
  if z1 ~= 0 or z2 ~= 0 then return nil, ("%s: not an idx file (bad magic %02x %02x)"):format(path, z1, z2) end
  if ty ~= 0x08 then return nil, ("%s: unsupported idx element type 0x%02x (only 0x08, bytes)"):format(path, ty) end
  if ndim < 1 or ndim > 4 then return nil, ("%s: idx file with %d dimensions (1 to 4 supported)"):format(path, ndim) end
  local header = 4 + 4 * ndim
  if #s < header then return nil, ("%s: truncated idx header (%d bytes, need %d)"):format(path, #s, header) end
  local dims, count = {}, 1
  for i = 1, ndim do
    dims[i] = string.unpack(">I4", s, 1 + 4 * i)
    count = count * dims[i]
  end
  if #s - header ~= count then
    return nil, ("%s: idx data has %d bytes, dimensions %s need %d"):format(path, #s - header,
      table.concat(dims, "x"), count)
  end
  local t = bytes_to_tensor(s, header + 1, count, opts.labels and "int64" or "float32", opts.labels and 1 or 0)
  return core.view(t, dims)
end

-- load(dir, split [, {limit = n}]) -> images (N, 1, 28, 28) float32 in [0, 1], labels (N) int64 in 1..10,
-- for the MNIST file names (train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, ...); with limit > 0
-- only the first `limit` of them (a quick check). Raises on failure.
function M.load(dir, split, opts)
  local limit = opts and opts.limit or 0
  if math.type(limit) ~= "integer" or limit < 0 then
    error(("mnist: limit must be an integer >= 0 (0: all), got %s"):format(tostring(limit)), 2)
  end
  local prefix = ({ train = "train", test = "t10k" })[split or "train"]
  if not prefix then error(("mnist: split must be 'train' or 'test', got '%s'"):format(tostring(split)), 2) end
  local function find(kind)
    for _, ext in ipairs { ".gz", "" } do
      local p = ("%s/%s-%s-ubyte%s"):format(dir, prefix, kind, ext)
      if core.exists(p) then return p end
    end
    error(("mnist: %s/%s-%s-ubyte(.gz) not found"):format(dir, prefix, kind), 3)
  end
  local images = assert(M.read(find("images-idx3")))
  local labels = assert(M.read(find("labels-idx1"), { labels = true }))
  local s = images.shape
  if #s ~= 3 or labels:dim() ~= 1 or s[1] ~= labels:size(1) then
    error(("mnist: %s images %s do not match labels %s"):format(split or "train", lumen.shape_str(images),
      lumen.shape_str(labels)), 2)
  end
  images = lumen.mul(core.view(images, { s[1], 1, s[2], s[3] }), 1 / 255)
  if limit > 0 and limit < s[1] then return images:narrow(1, 1, limit), labels:narrow(1, 1, limit) end
  return images, labels
end

return M
