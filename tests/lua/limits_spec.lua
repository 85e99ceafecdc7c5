-- lumen.limits: the process-wide bounds readers and importers check before allocating.
local lumen = require "lumen"

describe("lumen.limits", function()
  it("lists every limit with a value and a line of documentation", function()
    local values, docs = lumen.limits()
    local n = 0
    for name, v in pairs(values) do
      n = n + 1
      assert.is_true(math.type(v) == "integer" and v >= 1, name)
      assert.is_string(docs[name])
    end
    assert.is_true(n >= 6)
    assert.equals(50000000, values.image_pixels)
  end)

  it("sets a limit and returns the values before", function()
    local before = lumen.limits { model_nodes = 7 }
    assert.equals(7, lumen.limits().model_nodes)
    lumen.limits { model_nodes = before.model_nodes }
    assert.equals(before.model_nodes, lumen.limits().model_nodes)
  end)

  it("rejects unknown names and values below 1 without changing anything", function()
    local before = lumen.limits()
    assert.has_error(function() lumen.limits { image_pixels = 5, imag_pixels = 3 } end,
      "limits: unknown limit 'imag_pixels' (known: image_pixels, file_bytes, inflated_bytes, tensor_bytes, model_nodes, model_tensors, cache_bytes)")
    assert.same(before, (lumen.limits()))
    assert.has_error(function() lumen.limits { image_pixels = 0 } end, "limits: image_pixels must be an integer >= 1, got 0")
    assert.has_error(function() lumen.limits { image_pixels = 2.5 } end)
  end)
end)
