-- Writes data/images/fashion/: the first Fashion-MNIST test image of each class as a 28x28 gray PNG,
-- named <test index>_<class>.png (test index 1-based, 4 digits), the small inputs the batch examples
-- and tests use. Needs Debian's dataset-fashion-mnist.   lumen run tools/fashion_samples.lua
local lumen = require "lumen"
local p = lumen.args { out = "data/images/fashion" }
local X, y = lumen.recipe.fashion_test()
local labels = lumen.load_model(lumen.recipe.FASHION_MODEL).labels
local seen = {}
lumen.mkdir(p.out)
for i = 1, X.shape[1] do
  local c = y:get { i }
  if not seen[c] then
    seen[c] = true
    local name = labels[c]:lower():gsub("[^%w]+", "_")
    assert(lumen.image.save(X:narrow(1, i, 1):squeeze(1), ("%s/%04d_%s.png"):format(p.out, i, name)))
  end
end
