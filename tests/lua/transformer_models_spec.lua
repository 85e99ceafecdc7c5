-- Specs for nn.PositionEmbedding and the transformer models built with it (lumen.models.vit,
-- lumen.models.text_transformer): the class token and positions as defined, gradients by finite
-- differences, checkpoints that rebuild the same model, the padding mask, clear errors.
local lumen = require "lumen"
local support = require "support"
local nn = lumen.nn

describe("nn.PositionEmbedding", function()
  it("puts the class token first and adds the first T positions", function()
    lumen.seed(1)
    local pe = nn.PositionEmbedding { length = 5, dim = 3, class_token = true }
    pe.class_token = lumen.randn { 1, 1, 3 }
    local x = lumen.randn { 2, 4, 3 }
    local y = pe:forward(x)
    assert.same({ 2, 5, 3 }, y.shape)
    local pos = pe.pos_embedding:detach()
    assert.same({ 1, 6, 3 }, pos.shape)
    for n = 1, 2 do
      support.assert_close(y:narrow(1, n, 1):narrow(2, 1, 1), pe.class_token + pos:narrow(2, 1, 1), 1e-7, "class token")
      support.assert_close(y:narrow(1, n, 1):narrow(2, 2, 4), x:narrow(1, n, 1) + pos:narrow(2, 2, 4), 1e-7, "tokens")
    end
    local plain = nn.PositionEmbedding { length = 5, dim = 3 }
    support.assert_close(plain:forward(x), x + plain.pos_embedding:narrow(2, 1, 4), 1e-7, "no class token")
    support.assert_gradcheck(function(a, c, p)
      pe.class_token, pe.pos_embedding = c, p
      return pe:forward(a)
    end, { x, pe.class_token:clone(), pos:clone() })
  end)

  it("refuses too many tokens, a wrong width and unknown options", function()
    local pe = nn.PositionEmbedding { length = 4, dim = 3, name = "pos" }
    assert.has_error(function() pe:forward(lumen.zeros { 1, 5, 3 }) end, "pos: 5 tokens, but the model has positions for 4")
    assert.has_error(function() pe:forward(lumen.zeros { 1, 4, 2 }) end, "pos: expected (N, T, 3), got (1, 4, 2)")
    assert.has_error(function() nn.PositionEmbedding { length = 4, dim = 3, cls = true } end,
      "PositionEmbedding: unknown option 'cls' (known: class_token, dim, length)")
  end)
end)

describe("lumen.models.vit and text_transformer", function()
  it("a ViT saves and loads to the same outputs, its attention capturable per layer", function()
    lumen.seed(2)
    local m = lumen.models.vit { image = 8, patch = 2, dim = 8, depth = 2, heads = 2, mlp = 16 }:eval()
    local x = lumen.rand { 2, 1, 8, 8 }
    local path = support.tmp("vit.lumen")
    m:save(path)
    local back = lumen.load_model(path, { cache = false })
    os.remove(path)
    support.assert_close(back:forward(x), m:forward(x), 0, "checkpoint")
    assert.same(m.labels, back.labels)
    local _, cap = m:forward(x, { capture = { "encoder_2.self_attn:attention" } })
    assert.same({ 2, 2, 17, 17 }, cap["encoder_2.self_attn:attention"].shape)
    assert.truthy(m:summary():find("pos (PositionEmbedding)", 1, true))
    assert.has_error(function() lumen.models.vit { image = 28, patch = 5 } end, "vit: image 28 is not a multiple of patch 5")
  end)

  it("a text transformer masks padding: the scores do not depend on what the padding holds", function()
    lumen.seed(3)
    local m = lumen.models.text_transformer { vocab = 30, length = 8, dim = 8, heads = 2, mlp = 16, classes = 3,
                                              embed_dim = 5 }:eval()
    local ids = lumen.tensor({ { 4, 5, 6, 1, 1, 1, 1, 1 } }, "int64")
    local y = m:forward(ids)
    support.assert_close(m:forward(ids:narrow(2, 1, 3)), y, 1e-6, "without the padding")
    -- change the <pad> row of the embedding: nothing changes
    local E = m:layer("embed")
    local w = E.weight
    E.weight = lumen.cat({ lumen.full({ 1, 5 }, 3.0), w:narrow(1, 2, 29) }, 1)
    support.assert_close(m:forward(ids), y, 1e-6, "another padding vector")
    E.weight = w
    local path = support.tmp("tt.lumen")
    m:save(path)
    local back = lumen.load_model(path, { cache = false })
    os.remove(path)
    support.assert_close(back:forward(ids), y, 0, "checkpoint")
    assert.has_error(function() lumen.models.text_transformer {} end,
      "text_transformer: vocab must be the vocabulary size (an integer >= 2)")
  end)
end)
