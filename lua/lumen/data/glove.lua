-- lumen.data GloVe loader: the text format (one word then its D values per line), plain or gzipped.
--   load(path [, {words = array | Vocabulary}]) -> vocab, E (V, D) float32, found
-- Without words: vocab = <pad>, <unk>, then every word in file order. With words: vocab holds those
-- words (a Vocabulary is used as is) and rows of words missing from the file stay zero, as in Keras's
-- pretrained-embedding recipe. Rows 1 (<pad>) and 2 (<unk>) are zero. found = rows filled from the file.
local lumen = require "lumen"
local core = lumen.core
local text = require "lumen.data.text"

local M = {}

local function read_text(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local head = f:read(2)
  f:close()
  if head == "\31\139" then return core.gunzip_file(path) end
  f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.load(path, opts)
  opts = opts or {}
  local s, err = read_text(path)
  if not s then return nil, err end
  local vocab
  if opts.words and getmetatable(opts.words) then vocab = opts.words
  elseif opts.words then vocab = text.Vocabulary(opts.words) end
  -- First pass: the lines we need, without parsing their numbers.
  local lines, dim, lineno = {}, nil, 0
  for line in s:gmatch("[^\n]+") do
    lineno = lineno + 1
    local word, rest = line:match("^(%S+) (.+)$")
    if not word then return nil, ("%s: line %d is not 'word v1 v2 ...'"):format(path, lineno) end
    if not vocab or (vocab.index[word] and vocab.index[word] > 2) then
      lines[#lines + 1] = { word, rest, lineno }
    end
  end
  if not vocab then
    vocab = text.Vocabulary()
    for _, l in ipairs(lines) do l.id = vocab:add(l[1]) end
  end
  local E
  local found = 0
  for _, l in ipairs(lines) do
    local row = {}
    for v in l[2]:gmatch("%S+") do
      local x = tonumber(v)
      if not x then return nil, ("%s: line %d: '%s' is not a number"):format(path, l[3], v) end
      row[#row + 1] = x
    end
    dim = dim or (opts.dim or #row)
    if #row ~= dim then return nil, ("%s: line %d has %d values, expected %d"):format(path, l[3], #row, dim) end
    E = E or lumen.zeros({ vocab:size(), dim })
    local id = l.id or vocab.index[l[1]]
    core.copy_(core.narrow0(E, id, 1), core.from_table(row))
    found = found + 1
  end
  if not E then
    if not opts.dim then return nil, path .. ": no vectors found (pass opts.dim to get zeros)" end
    E = lumen.zeros({ vocab:size(), opts.dim })
  end
  return vocab, E, found
end

return M
