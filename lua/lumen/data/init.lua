-- lumen.data: datasets and batching. MNIST-format files (idx), text (tokenizer, Vocabulary, encode),
-- GloVe vectors, and a batch iterator with shuffling on lumen's seeded RNG.
local lumen = require "lumen"
local core = lumen.core
local idx = require "lumen.data.idx"
local text = require "lumen.data.text"
local glove = require "lumen.data.glove"

local M = {
  read_idx = idx.read,               -- (path [, {labels = true}]) -> tensor | nil, msg
  load_mnist = idx.load,             -- (dir, "train" | "test" [, {limit}]) -> images (N, 1, 28, 28), labels (N)
  tokenize = text.tokenize,          -- (string) -> tokens
  Vocabulary = text.Vocabulary,      -- (words) -> vocab; vocab:encode(tokens, length), :id, :word, :size, :save
  build_vocabulary = text.build_vocabulary, -- (token_lists, {max_size, min_count}) -> vocab
  load_vocabulary = text.load_vocabulary,   -- (path) -> vocab | nil, msg
  encode = text.encode,              -- (texts, vocab, length [, {pad, truncate}]) -> int64 (N, length)
  load_glove = glove.load,           -- (path [, {words}]) -> vocab, E (V, D), found | nil, msg
  load_fortunes = text.load_fortunes, -- (dir, "name,name,...") -> token lists, class ids, class names
  holdout = text.holdout,            -- (texts, labels, fraction) -> train texts, y, test texts, y (one shuffle)
  -- Fashion-MNIST's class names, in the order of its labels
  FASHION_MNIST_LABELS = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                           "Bag", "Ankle boot" },
  -- The fortune(6) files (Debian's `fortunes`) the shipped text models learn to tell apart
  FORTUNE_CATEGORIES = "people,definitions,cookie,computers,songs-poems,politics,miscellaneous,work,science,"
    .. "men-women,zippy,knghtbrd,platitudes,art,fortunes,wisdom,linux,disclaimer,perl,literature",
}

-- batches(X, y, batch_size [, {shuffle = false}]) -> iterator of (xb, yb, k, nbatches) over rows of X
-- (and y, which may be nil). Shuffling draws one permutation per call (lumen.randperm).
function M.batches(X, y, batch_size, opts)
  local n = X:size(1)
  if y and y:size(1) ~= n then
    error(("batches: X has %d rows but y has %d"):format(n, y:size(1)), 2)
  end
  local perm = opts and opts.shuffle and lumen.tensor(lumen.randperm(n), "int64")
  local nb = (n + batch_size - 1) // batch_size
  local k = 0
  return function()
    k = k + 1
    if k > nb then return nil end
    local first, len = (k - 1) * batch_size + 1, math.min(batch_size, n - (k - 1) * batch_size)
    if perm then
      local rows = core.narrow0(perm, first, len)
      return lumen.index_select(X, 1, rows), y and lumen.index_select(y, 1, rows), k, nb
    end
    return core.narrow0(X, first, len), y and core.narrow0(y, first, len), k, nb
  end
end

-- split(X, y, fraction [, shuffle]) -> X1, y1, X2, y2 with the first `fraction` of the rows in the first part.
function M.split(X, y, fraction, shuffle)
  local n = X:size(1)
  local order = shuffle and lumen.randperm(n) or nil
  local m = math.floor(n * fraction + 0.5)
  local function part(t, a, len)
    if order then return lumen.index_select(t, 1, lumen.tensor(table.move(order, a, a + len - 1, 1, {}), "int64")) end
    return core.narrow0(t, a, len)
  end
  return part(X, 1, m), part(y, 1, m), part(X, m + 1, n - m), part(y, m + 1, n - m)
end

return M
