-- lumen.data text tools: a tokenizer (lowercase; runs of letters/digits are words, every punctuation
-- character is a token of its own; bytes >= 0x80 count as letters so UTF-8 words stay whole), and a
-- Vocabulary mapping words to 1-based ids with 1 = "<pad>" and 2 = "<unk>", which encodes texts as
-- int64 (N, length) tensors padded or truncated to a fixed length.
local lumen = require "lumen"

local M = {}
M.PAD, M.UNK = 1, 2

function M.tokenize(text)
  local tokens = {}
  for tok in text:lower():gsub("%p", " %0 "):gmatch("%S+") do tokens[#tokens + 1] = tok end
  return tokens
end

local Vocabulary = {}
Vocabulary.__index = Vocabulary

-- Vocabulary(words) -> vocabulary of "<pad>", "<unk>", then words (repeats and the two reserved
-- words skipped).
function M.Vocabulary(words)
  local v = setmetatable({ words = { "<pad>", "<unk>" }, index = { ["<pad>"] = 1, ["<unk>"] = 2 } }, Vocabulary)
  for _, w in ipairs(words or {}) do v:add(w) end
  return v
end

function Vocabulary:add(word)
  local id = self.index[word]
  if id then return id end
  id = #self.words + 1
  self.words[id], self.index[word] = word, id
  return id
end

function Vocabulary:size() return #self.words end
function Vocabulary:id(word) return self.index[word] or M.UNK end
function Vocabulary:word(id) return self.words[id] end

-- encode(tokens, length [, opts]) -> array of `length` ids: unknown words -> 2, padded with 1.
-- opts.truncate / opts.pad = "post" (default: keep the start, pad at the end) or "pre".
function Vocabulary:encode(tokens, length, opts)
  opts = opts or {}
  local n = math.min(#tokens, length)
  local first = opts.truncate == "pre" and #tokens - n or 0
  local ids = {}
  for i = 1, n do ids[i] = self:id(tokens[first + i]) end
  if opts.pad == "pre" then
    local padded = {}
    for i = 1, length - n do padded[i] = M.PAD end
    table.move(ids, 1, n, length - n + 1, padded)
    return padded
  end
  for i = n + 1, length do ids[i] = M.PAD end
  return ids
end

-- Writes one word per line (line k = id k).
function Vocabulary:save(path)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  f:write(table.concat(self.words, "\n"), "\n")
  f:close()
  return true
end

-- load_vocabulary(path) -> Vocabulary saved by :save, or nil, msg.
function M.load_vocabulary(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local v = setmetatable({ words = {}, index = {} }, Vocabulary)
  for line in f:lines() do v:add(line) end
  f:close()
  if v.words[1] ~= "<pad>" or v.words[2] ~= "<unk>" then
    return nil, path .. ": not a vocabulary (lines 1 and 2 must be <pad> and <unk>)"
  end
  return v
end

-- build_vocabulary(token_lists [, {max_size =, min_count = 1}]) -> Vocabulary of the most frequent
-- words (ties by first appearance), most frequent first.
function M.build_vocabulary(lists, opts)
  opts = opts or {}
  local count, order = {}, {}
  for _, tokens in ipairs(lists) do
    for _, t in ipairs(tokens) do
      if not count[t] then order[#order + 1] = t; count[t] = 0 end
      count[t] = count[t] + 1
    end
  end
  local rank = {}
  for i, w in ipairs(order) do rank[w] = i end
  table.sort(order, function(a, b)
    if count[a] ~= count[b] then return count[a] > count[b] end
    return rank[a] < rank[b]
  end)
  local words = {}
  for _, w in ipairs(order) do
    if count[w] < (opts.min_count or 1) or (opts.max_size and #words + 2 >= opts.max_size) then break end
    words[#words + 1] = w
  end
  return M.Vocabulary(words)
end

-- encode(texts, vocab, length [, opts]) -> int64 (N, length): texts are strings (tokenized here) or
-- token arrays.
function M.encode(texts, vocab, length, opts)
  local rows = {}
  for i, t in ipairs(texts) do
    rows[i] = vocab:encode(type(t) == "string" and M.tokenize(t) or t, length, opts)
  end
  if #rows == 0 then return lumen.zeros({ 0, length }):long() end
  return lumen.tensor(rows, "int64")
end

-- load_fortunes(dir, categories) -> texts (token lists), labels (class ids 1..), names: every fortune of the
-- files named in `categories` (comma-separated, each a file of dir in fortune(6)'s format: texts separated
-- by lines holding "%"), labelled by its file's position in the list. Raises naming a missing file.
function M.load_fortunes(dir, categories)
  local texts, labels, names = {}, {}, {}
  for name in categories:gmatch("[^,]+") do
    names[#names + 1] = name
    local path = dir .. "/" .. name
    local f, err = io.open(path, "r")
    if not f then error(("fortunes: cannot read %s (%s)"):format(path, err), 2) end
    for text in (f:read("a") .. "\n%\n"):gmatch("(.-)\n%%\n") do
      if text:find("%S") then texts[#texts + 1], labels[#labels + 1] = M.tokenize(text), #names end
    end
    f:close()
  end
  return texts, labels, names
end

-- holdout(texts, labels, fraction) -> train texts, train labels (int64), test texts, test labels: one
-- shuffle (lumen.randperm, so the seed decides it), then the first floor(#texts * fraction) are held out.
function M.holdout(texts, labels, fraction)
  local order = lumen.randperm(#texts)
  local ntest = math.floor(#texts * fraction)
  local function part(a, b)
    local t, l = {}, {}
    for i = a, b do t[#t + 1], l[#l + 1] = texts[order[i]], labels[order[i]] end
    return t, lumen.tensor(l, "int64")
  end
  local test_t, test_y = part(1, ntest)
  local train_t, train_y = part(ntest + 1, #texts)
  return train_t, train_y, test_t, test_y
end

return M
