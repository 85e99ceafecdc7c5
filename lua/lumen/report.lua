-- lumen.report: one self-contained HTML page over every run under a folder (`lumen report DIR`,
-- `lumen batch ... report=true`, or `report=true` on any recipe). A run is a folder holding a
-- manifest.json (lumen.manifest) or an error.txt (an input lumen batch could not explain).
--
--   local path = lumen.report.write("out/gradcam")       -- out/gradcam/index.html
--   local runs = lumen.report.collect("out/gradcam")     -- the runs as Lua tables (below)
--
-- The page has no external script, style, font or request: pictures and files are linked by
-- relative paths, so it works from file:// and from any static server, and moves with its folder.
-- At the top a summary (runs, complete, failed, methods, classes, pictures, compute time) and any
-- leaderboard a run recorded (recipes/benchmark_methods.lua); then one row per run: its pictures, the
-- method, the explained class (target) and the predicted one, the input, the parameters, the time,
-- faithfulness numbers when the run recorded some, and links to its .npy files and manifest. The rows
-- sort by any column (click its head) and filter by method, class and free text, in a few lines of
-- plain JavaScript.
local lumen = require "lumen"
local batch = require "lumen.batch"
local runs_mod = require "lumen.runs"

local M = {}

local PICTURE = { png = true, jpg = true, jpeg = true, gif = true, svg = true }

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

-- A relative URL for a relative path: every byte outside A-Z a-z 0-9 - . _ ~ / percent-encoded.
local function url(path)
  return (path:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function num(v, digits)
  if type(v) ~= "number" then return "" end
  return (("%." .. (digits or 3) .. "f"):format(v))
end


-- The run folders under dir (dir itself included): those holding a regular file manifest.json or
-- error.txt, sorted. A folder under dir that cannot be read is an error naming it.
local function run_folders(dir)
  local seen, list = {}, {}
  runs_mod.walk(dir, function(rel, ty)
    local sub, name = rel:match("^(.-)/?([^/]+)$")
    if ty == "file" and (name == runs_mod.MANIFEST or name == "error.txt") then
      local folder = sub == "" and dir or (dir .. "/" .. sub)
      if not seen[folder] then seen[folder], list[#list + 1] = true, folder end
    end
  end)
  table.sort(list)
  return list
end

-- The JSON object in a file, or nil and why.
local function read_json(path)
  local text = runs_mod.read_file(path)
  if not text then return nil, "no " .. path end
  local ok, v = pcall(lumen.json.decode, text)
  if not ok or type(v) ~= "table" then return nil, path .. " is not complete JSON" end
  return v
end

-- Faithfulness rows of a manifest's info: {method =, <metric> = number, ...} from info.faithfulness
-- (recipes/benchmark_methods.lua) or info.auc (recipes/faithfulness.lua).
local function faithfulness_rows(info)
  local rows = type(info.faithfulness) == "table" and info.faithfulness or type(info.auc) == "table" and info.auc or nil
  if not rows or #rows == 0 then return nil end
  local out = {}
  for _, r in ipairs(rows) do
    if type(r) == "table" and r.method then
      local metrics = {}
      for k, v in pairs(r) do
        if type(v) == "number" then metrics[#metrics + 1] = { k, v } end
      end
      table.sort(metrics, function(a, b) return a[1] < b[1] end)
      out[#out + 1] = { method = tostring(r.method), metrics = metrics }
    end
  end
  return #out > 0 and out or nil
end

-- collect(dir) -> runs: array of {rel, recipe, method, class, target, predicted, input, params (sorted
-- {k, v}; out=, overwrite= and report= left out, the model file's SHA-256 added as model_sha256),
-- model, model_sha256, seconds, pictures, files, faithfulness, leaderboard, error, edited (the
-- manifest's checksum does not hold)}, in folder order. Reads manifest_version 2 (script {path, ...},
-- inputs.model.sha256) and 1.
function M.collect(dir)
  dir = dir:gsub("/+$", "")
  local runs = {}
  for _, folder in ipairs(run_folders(dir)) do
    local rel = folder == dir and "." or folder:sub(#dir + 2)
    local m = read_json(folder .. "/manifest.json")
    local err = runs_mod.read_file(folder .. "/error.txt")
    local run = { rel = rel, pictures = {}, files = {}, params = {} }
    if m then
      local p = type(m.params) == "table" and m.params or {}
      local info = type(m.info) == "table" and m.info or {}
      local inputs = type(m.inputs) == "table" and m.inputs or {}
      local script = type(m.script) == "table" and m.script.path or m.script -- manifest_version 2, or 1
      run.recipe = type(script) == "string" and script:match("([^/]*)$"):gsub("%.lua$", "") or "?"
      run.method = type(p.method) == "string" and p.method ~= "" and p.method or run.recipe
      run.target = info.target
      run.class = info.label or (info.target and tostring(info.target)) or ""
      run.predicted = info.predicted_label or info.predicted
      if run.predicted == nil and info.target and (p.target == nil or p.target == 0 or p.target == "") then run.predicted = run.class end
      run.input = (type(p.image) == "string" and p.image ~= "") and p.image or (p.index and ("test image " .. tostring(p.index))) or ""
      for k, v in pairs(p) do
        if k ~= "image" and not batch.IGNORED[k] and type(v) ~= "table" then run.params[#run.params + 1] = { k, tostring(v) } end
      end
      -- The model's bytes, as a parameter: runs of one model path with different files do not look alike.
      local model = type(inputs.model) == "table" and inputs.model or {}
      run.model = type(model.path) == "string" and model.path or type(p.model) == "string" and p.model or nil
      if type(model.sha256) == "string" then
        run.model_sha256 = model.sha256
        run.params[#run.params + 1] = { "model_sha256", model.sha256:sub(1, 12) }
      end
      table.sort(run.params, function(a, b) return a[1] < b[1] end)
      run.seconds = type(m.seconds) == "number" and m.seconds or nil
      local names = {}
      for name in pairs(type(m.files) == "table" and m.files or {}) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local ext = (name:match("%.([^.]+)$") or ""):lower()
        local list = PICTURE[ext] and run.pictures or run.files
        list[#list + 1] = name
      end
      run.faithfulness = faithfulness_rows(info)
      run.leaderboard = type(info.leaderboard) == "table" and info.leaderboard or nil
      run.has_manifest = true
      if m.manifest_sha256 ~= nil then run.edited = runs_mod.checksum(m) ~= m.manifest_sha256 end
    end
    if err then
      run.error = err
      run.recipe = run.recipe or (err:match("\nrecipe: ([^\n]+)") or "?"):match("([^/]+)$"):gsub("%.lua$", "")
      run.method = run.method or run.recipe
      run.input = run.input or err:match("^input: ([^\n]+)") or ""
      run.class = run.class or ""
    end
    runs[#runs + 1] = run
  end
  return runs
end

local function link(rel, name, text)
  local href = rel == "." and name or (rel .. "/" .. name)
  return ('<a href="%s">%s</a>'):format(esc(url(href)), esc(text or name))
end

-- The leaderboard table of a run that recorded one (recipes/benchmark_methods.lua).
local function leaderboard_html(run)
  local board = run.leaderboard
  local rows, cols = type(board.rows) == "table" and board.rows or {}, board.columns or { "deletion", "insertion", "road_morf", "road_lerf" }
  local h = { ('<section class="board"><h2>Leaderboard: %s</h2>'):format(link(run.rel, "manifest.json", run.rel)) }
  h[#h + 1] = ("<p>%s</p>"):format(esc(board.note or "mean over the inputs [95 % bootstrap interval]"))
  h[#h + 1] = "<table><thead><tr><th>rank</th><th>method</th><th>inputs</th>"
  for _, c in ipairs(cols) do h[#h + 1] = ("<th>%s</th>"):format(esc(c)) end
  h[#h + 1] = "</tr></thead><tbody>"
  for i, r in ipairs(rows) do
    h[#h + 1] = ("<tr><td>%d</td><td>%s</td><td>%s</td>"):format(i, esc(r.method or "?"), esc(r.n or ""))
    for _, c in ipairs(cols) do
      local s = type(r[c]) == "table" and r[c] or {}
      h[#h + 1] = ("<td>%s <small>[%s, %s]</small></td>"):format(num(s.mean), num(s.lo), num(s.hi))
    end
    h[#h + 1] = "</tr>"
  end
  h[#h + 1] = "</tbody></table>"
  for _, pic in ipairs(run.pictures) do
    h[#h + 1] = ('<p><img class="chart" src="%s" alt="%s"></p>'):format(esc(url(run.rel == "." and pic or run.rel .. "/" .. pic)), esc(pic))
  end
  for _, f in ipairs(run.files) do h[#h + 1] = link(run.rel, f) .. " " end
  h[#h + 1] = "</section>"
  return table.concat(h)
end

local STYLE = [[
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em}
#summary span.n{font-weight:600}
#summary{background:#f4f6f8;padding:.6em 1em;border-radius:6px;display:inline-block}
table{border-collapse:collapse;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#eef1f4;position:sticky;top:0;cursor:pointer;user-select:none}
thead th.asc::after{content:" \25B2"} thead th.desc::after{content:" \25BC"}
tr.failed td{background:#fff1f0}
td.pics img{height:96px;image-rendering:pixelated;margin-right:4px;border:1px solid #ccc}
img.chart{max-width:100%;border:1px solid #ccc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.params{color:#555;font-size:12px;max-width:22em}
.err{color:#a8071a;white-space:pre-wrap;font-size:12px;max-width:30em}
#common{color:#555;font-size:12px;padding-left:1.2em} #controls{margin:1em 0} #controls label{margin-right:1em}
small{color:#666}
table.faith{margin:0;font-size:12px} table.faith th,table.faith td{padding:1px 4px;border:0;background:none;position:static}
]]

-- Sorting (click a column head; numbers by value) and filtering (method, class, text).
local SCRIPT = [[
(function(){
  var body = document.querySelector('#runs tbody'), rows = Array.prototype.slice.call(body.rows);
  var f = {method: document.getElementById('f-method'), cls: document.getElementById('f-class'), text: document.getElementById('f-text')};
  function filter(){
    var shown = 0;
    rows.forEach(function(r){
      var ok = (!f.method.value || r.dataset.method === f.method.value) && (!f.cls.value || r.dataset.class === f.cls.value) &&
               (!f.text.value || r.textContent.toLowerCase().indexOf(f.text.value.toLowerCase()) >= 0);
      r.style.display = ok ? '' : 'none'; if (ok) shown++;
    });
    document.getElementById('n-shown').textContent = shown;
  }
  [f.method, f.cls].forEach(function(e){ e.addEventListener('change', filter); });
  f.text.addEventListener('input', filter);
  Array.prototype.forEach.call(document.querySelectorAll('#runs thead th'), function(th, col){
    th.addEventListener('click', function(){
      var dir = th.classList.contains('asc') ? -1 : 1;
      Array.prototype.forEach.call(th.parentNode.children, function(h){ h.classList.remove('asc', 'desc'); });
      th.classList.add(dir > 0 ? 'asc' : 'desc');
      function key(r){ var c = r.cells[col]; return c.dataset.sort !== undefined ? c.dataset.sort : c.textContent.trim(); }
      rows.sort(function(a, b){
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return d * dir;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
  filter();
})();
]]

local function options(id, label, values)
  local h = { ('<label>%s <select id="%s"><option value="">all</option>'):format(label, id) }
  for _, v in ipairs(values) do h[#h + 1] = ('<option value="%s">%s</option>'):format(esc(v), esc(v)) end
  h[#h + 1] = "</select></label>"
  return table.concat(h)
end

local function sorted_keys(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return t
end

-- html(runs, title) -> the page.
function M.html(runs, title)
  local methods, classes, n_ok, n_failed, n_pics, total = {}, {}, 0, 0, 0, 0
  for _, r in ipairs(runs) do
    methods[r.method] = true
    if r.class ~= "" then classes[r.class] = true end
    if r.error then n_failed = n_failed + 1 elseif r.has_manifest then n_ok = n_ok + 1 end
    n_pics = n_pics + #r.pictures
    total = total + (r.seconds or 0)
  end
  local h = { "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">", runs_mod.REPORT_TAG,
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    ("<title>%s</title><style>%s</style></head><body>"):format(esc(title), STYLE),
    ("<h1>%s</h1>"):format(esc(title)) }
  local method_list, class_list = sorted_keys(methods), sorted_keys(classes)
  h[#h + 1] = ('<p id="summary"><span class="n" id="n-runs">%d</span> runs: <span class="n" id="n-ok">%d</span> complete, ' ..
    '<span class="n" id="n-failed">%d</span> failed · <span class="n" id="n-methods">%d</span> methods · ' ..
    '<span class="n" id="n-classes">%d</span> classes · <span class="n" id="n-pictures">%d</span> pictures · ' ..
    '<span class="n" id="n-seconds">%.1f</span> s of compute</p>'):format(#runs, n_ok, n_failed, #method_list, #class_list, n_pics, total)
  -- Parameters every run of a recipe shares are said once, above the table; rows show the rest.
  local common, seen = {}, {}
  for _, r in ipairs(runs) do
    if r.has_manifest then
      local c = common[r.recipe]
      if not c then
        c = {}
        for _, kv in ipairs(r.params) do c[kv[1]] = kv[2] end
        common[r.recipe] = c
        seen[#seen + 1] = r.recipe
      else
        local here = {}
        for _, kv in ipairs(r.params) do here[kv[1]] = kv[2] end
        for k, v in pairs(c) do if here[k] ~= v then c[k] = nil end end
      end
    end
    common[r.recipe] = common[r.recipe] or {}
  end
  h[#h + 1] = '<ul id="common">'
  for _, name in ipairs(seen) do
    local kv = {}
    for _, k in ipairs(sorted_keys(common[name])) do kv[#kv + 1] = esc(k .. "=" .. common[name][k]) end
    h[#h + 1] = ('<li><b>%s</b>: %s</li>'):format(esc(name), #kv > 0 and table.concat(kv, " ") or "<small>(no parameter shared by all its runs)</small>")
  end
  h[#h + 1] = "</ul>"
  for _, r in ipairs(runs) do
    if r.leaderboard then h[#h + 1] = leaderboard_html(r) end
  end
  h[#h + 1] = '<div id="controls">' .. options("f-method", "method", method_list) .. options("f-class", "class", class_list) ..
    '<label>text <input id="f-text" type="search" placeholder="filter"></label> <span id="n-shown"></span> shown</div>'
  h[#h + 1] = '<table id="runs"><thead><tr><th>run</th><th>pictures</th><th>method</th><th>class (target)</th>' ..
    '<th>predicted</th><th>input</th><th>parameters</th><th>seconds</th><th>faithfulness</th><th>files</th></tr></thead><tbody>'
  for _, r in ipairs(runs) do
    local cells = {}
    cells[1] = "<td>" .. (r.has_manifest and link(r.rel, "manifest.json", r.rel) or esc(r.rel)) ..
      (r.edited and ' <small class="err" title="its checksum does not match: changed after the run">manifest edited</small>' or "") .. "</td>"
    local pics = {}
    for _, pic in ipairs(r.pictures) do
      local href = esc(url(r.rel == "." and pic or r.rel .. "/" .. pic))
      pics[#pics + 1] = ('<a href="%s"><img src="%s" alt="%s" title="%s"></a>'):format(href, href, esc(pic), esc(pic))
    end
    if r.error then pics[#pics + 1] = ('<div class="err">%s</div>'):format(esc(r.error:match("\n\n([^\n]*)") or r.error)) end
    cells[2] = '<td class="pics">' .. table.concat(pics) .. "</td>"
    cells[3] = "<td>" .. esc(r.method) .. "</td>"
    cells[4] = ('<td data-sort="%s">%s%s</td>'):format(esc(r.class), esc(r.class), r.target and (" <small>(" .. esc(r.target) .. ")</small>") or "")
    cells[5] = "<td>" .. esc(r.predicted or "") .. "</td>"
    cells[6] = ('<td title="%s">%s</td>'):format(esc(r.input or ""), esc((r.input or ""):match("([^/]*)$")))
    local ps, all = {}, {}
    for _, kv in ipairs(r.params) do
      all[#all + 1] = kv[1] .. "=" .. kv[2]
      if not common[r.recipe][kv[1]] then ps[#ps + 1] = esc(all[#all]) end
    end
    cells[7] = ('<td class="params" title="%s">%s</td>'):format(esc(table.concat(all, " ")), table.concat(ps, " "))
    cells[8] = ('<td class="num" data-sort="%s">%s</td>'):format(r.seconds or -1, r.seconds and num(r.seconds, 2) or "")
    local fa = {}
    for i, row in ipairs(r.faithfulness or {}) do
      if i == 1 then -- a small table: one row per method, one column per number
        fa[1] = "<table class=\"faith\"><tr><th></th>"
        for _, kv in ipairs(row.metrics) do fa[#fa + 1] = "<th>" .. esc(kv[1]:gsub("_auc$", "")) .. "</th>" end
        fa[#fa + 1] = "</tr>"
      end
      fa[#fa + 1] = "<tr><td>" .. esc(row.method) .. "</td>"
      for _, kv in ipairs(row.metrics) do fa[#fa + 1] = ('<td class="num">%s</td>'):format(num(kv[2])) end
      fa[#fa + 1] = "</tr>"
    end
    if #fa > 0 then fa[#fa + 1] = "</table>" end
    cells[9] = "<td>" .. table.concat(fa) .. "</td>"
    local files = {}
    for _, f in ipairs(r.files) do files[#files + 1] = link(r.rel, f) end
    if r.error then files[#files + 1] = link(r.rel, "error.txt") end
    cells[10] = "<td>" .. table.concat(files, "<br>") .. "</td>"
    h[#h + 1] = ('<tr class="%s" data-method="%s" data-class="%s">%s</tr>'):format(r.error and "failed" or "ok", esc(r.method),
      esc(r.class), table.concat(cells))
  end
  h[#h + 1] = "</tbody></table>"
  h[#h + 1] = ("<p><small>Written by lumen %s (lumen report). Rerun any row with <code>lumen rerun ROW/manifest.json</code>.</small></p>")
    :format(esc(lumen.version))
  h[#h + 1] = "<script>" .. SCRIPT .. "</script></body></html>\n"
  return table.concat(h, "\n")
end

-- write(dir [, title]) -> the path of dir/index.html (written to a temporary name, then renamed, so
-- shards finishing together never leave a half-written page).
function M.write(dir, title)
  local st = lumen.core.stat(dir)
  if not (st and st.type == "directory") then error(("report: %s is not a folder"):format(dir), 2) end
  dir = dir:gsub("/+$", "")
  local runs = M.collect(dir)
  local page = M.html(runs, title or ("lumen report: " .. dir))
  local path = dir .. "/index.html"
  local tmp = ("%s/.index.html.%d.tmp"):format(dir, math.random(1, 1 << 30))
  local f, err = io.open(tmp, "w")
  if not f then error("report: " .. err, 2) end
  f:write(page)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    error("report: " .. rerr, 2)
  end
  return path, runs
end

return M
