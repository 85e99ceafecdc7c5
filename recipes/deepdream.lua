-- Deep Dream (Mordvintsev et al. 2015): gradient ascent on the input to amplify what a layer sees (the
-- mean square of its activations, or one channel's mean with channel=k), over several octaves.
--   lumen run recipes/deepdream.lua [index=1] [layer=relu4] [steps=20] [octaves=3]
--   lumen run recipes/deepdream.lua model=../shared/data/models/mobilenet_v1_0.5_160_float.onnx preset=tflite \
--     image=../shared/data/images/sunflower.png layer=/27/Clip_output_0 size=320
--   lumen run recipes/deepdream.lua model=../shared/data/models/mobilenet_v2_1.0_224_quant.tflite \
--     image=../shared/data/images/sunflower.png layer=MobilenetV2/expanded_conv_10/depthwise/Relu6 size=320
-- (size= dreams on the photo at that size, not the model's; the forward pass stops at `layer`, so only
-- the layers up to it must accept other sizes.)
-- Writes deepdream.png (input | dream) and deepdream.npy (the dreamed input, in the model's scale).
local lumen = require "lumen"
local recipe = lumen.recipe
local viz = lumen.viz

local p = lumen.args(recipe.image_args { model = recipe.FASHION_MODEL, image = "", index = 1, labels = "", layer = "relu4", channel = 0,
                       octaves = 3, octave_scale = 1.4, steps = 20, lr = 0.01, jitter = 2,
                       out = "out/deepdream", seed = 0 })
lumen.seed(p.seed)
local model, img, x = recipe.load(p)
local dream = lumen.explain.deepdream(model, x, { layer = p.layer, channel = recipe.opt(p.channel), octaves = p.octaves,
  octave_scale = p.octave_scale, steps = p.steps, lr = p.lr, jitter = p.jitter })
print(("deepdream at layer %s%s: %d octaves of %d steps, change %.3f (mean |dream - input|)"):format(p.layer,
  p.channel > 0 and (" channel " .. p.channel) or "", p.octaves, p.steps, (dream - x):abs():mean_all()))

recipe.save_png(p.out, "deepdream.png", viz.panel({ viz.enlarge(img), viz.enlarge(recipe.to_image(model, dream)) },
  { labels = { "input", "dream" } }))
recipe.save_npy(p.out, "deepdream.npy", dream)
recipe.finish(p, { layer = p.layer })
