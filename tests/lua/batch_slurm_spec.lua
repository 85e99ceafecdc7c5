-- A real single-node Slurm runs a 2-task job array of `lumen batch` (the script README.md shows), and
-- the two shards write the same files as one unsharded run. The spec configures munge and Slurm in a
-- temporary folder, starts munged, slurmctld and slurmd, and stops them (by the process ids in their
-- pid files) when done. It needs root (as in CI) and Debian's slurm-wlm and munge; without them it
-- says why and is pending, never passed.
local lumen = require "lumen"
local support = require "support"
local q, sh, write = support.quote, support.sh, support.write
local function read(path) return support.read(path) or "" end -- logs and pid files may not exist yet

local LUMEN = lumen.core.exe_path()
local DAEMONS = { "munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo" }

-- Why Slurm cannot run here, or nil.
local function why_not()
  if read("/proc/self/maps"):find("libasan", 1, true) then
    return "skipped under AddressSanitizer: the job array runs the same Lua as the plain pass, which ran it"
  end
  for _, d in ipairs(DAEMONS) do
    if not sh("command -v " .. d) :match("/") then
      return ("%s is not installed (Debian packages slurm-wlm and munge); the Slurm job array was not run"):format(d)
    end
  end
  if sh("id -u"):match("%d+") ~= "0" then
    return "not root: slurmctld and slurmd need root to start here (CI runs the suite as root); the Slurm job array was not run"
  end
  return nil
end

-- Polls fn() every 0.1 s until it returns a true value or `seconds` pass; returns its last value.
local function wait_for(seconds, fn)
  local t0 = lumen.now()
  local v = fn()
  while not v and lumen.now() - t0 < seconds do
    os.execute("sleep 0.1")
    v = fn()
  end
  return v
end

describe("lumen batch in a Slurm job array", function()
  local why = why_not()
  if why then
    it("runs a 2-task job array (needs root, slurm-wlm and munge)", function() pending(why) end)
    return
  end

  it("runs a 2-task job array whose shards write the same files as one unsharded run", function()
    local tmp = lumen.tmpname("_slurm")
    local host = sh("hostname -s"):match("%S+")
    local port = math.random(20000, 60000) -- two ports; another suite may run on this machine at the same time
    for _, d in ipairs { "munge", "state", "spool", "log", "out", "in" } do lumen.mkdir(tmp .. "/" .. d) end
    local pids = {}
    finally(function() -- stop the daemons this spec started: both Slurm daemons, then munged
      for _, group in ipairs { { "slurmd", "slurmctld" }, { "munged" } } do
        local running = {}
        for _, name in ipairs(group) do
          local pid = pids[name] or read(tmp .. "/" .. name .. ".pid"):match("%d+")
          if pid then
            os.execute("kill " .. pid .. " 2>/dev/null")
            running[#running + 1] = pid
          end
        end
        for _, pid in ipairs(running) do
          wait_for(10, function() return not os.execute("kill -0 " .. pid .. " 2>/dev/null") end)
        end
      end
      os.execute("rm -rf " .. q(tmp))
    end)

    -- munge: a fresh key, its own socket.
    os.execute(("chmod 700 %s && head -c 1024 /dev/urandom > %s/munge/munge.key && chmod 400 %s/munge/munge.key"):format(
      q(tmp .. "/munge"), q(tmp), q(tmp)))
    local sock = tmp .. "/munge/munge.sock"
    local text, status = sh(("munged -f --socket=%s --key-file=%s/munge/munge.key --pid-file=%s/munged.pid " ..
      "--log-file=%s/log/munged.log --seed-file=%s/munge/seed"):format(q(sock), q(tmp), q(tmp), q(tmp), q(tmp)))
    assert(status == 0, "munged did not start: " .. text .. read(tmp .. "/log/munged.log"))
    pids.munged = wait_for(5, function() return read(tmp .. "/munged.pid"):match("%d+") end)

    local conf = tmp .. "/slurm.conf"
    write(conf, table.concat({
      "ClusterName=lumentest",
      ("SlurmctldHost=%s(127.0.0.1)"):format(host),
      ("SlurmctldPort=%d"):format(port), ("SlurmdPort=%d"):format(port + 1),
      "AuthType=auth/munge", "CredType=cred/munge", "AuthInfo=socket=" .. sock,
      "SlurmUser=root", "SlurmdUser=root",
      "StateSaveLocation=" .. tmp .. "/state", "SlurmdSpoolDir=" .. tmp .. "/spool",
      "SlurmctldPidFile=" .. tmp .. "/slurmctld.pid", "SlurmdPidFile=" .. tmp .. "/slurmd.pid",
      "SlurmctldLogFile=" .. tmp .. "/log/slurmctld.log", "SlurmdLogFile=" .. tmp .. "/log/slurmd.log",
      "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
      "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
      "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
      "MpiDefault=none", "ReturnToService=2", "SchedulerType=sched/builtin",
      ("NodeName=%s NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN"):format(host),
      "PartitionName=lumen Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    }, "\n") .. "\n")
    local env = "SLURM_CONF=" .. q(conf) .. " "
    text, status = sh(env .. "slurmctld -f " .. q(conf))
    assert(status == 0, "slurmctld did not start: " .. text .. read(tmp .. "/log/slurmctld.log"))
    pids.slurmctld = wait_for(5, function() return read(tmp .. "/slurmctld.pid"):match("%d+") end)
    text, status = sh(env .. "slurmd -f " .. q(conf))
    assert(status == 0, "slurmd did not start: " .. text .. read(tmp .. "/log/slurmd.log"))
    pids.slurmd = wait_for(5, function() return read(tmp .. "/slurmd.pid"):match("%d+") end)
    local idle = wait_for(30, function() return sh(env .. "sinfo -h -o %T"):match("idle") end)
    assert(idle, "the node never became idle: " .. sh(env .. "sinfo") .. read(tmp .. "/log/slurmctld.log"))

    -- Six inputs, and the job script of README.md ("On a cluster") with this suite's paths.
    for i, name in ipairs(require("lumen.batch").inputs("data/images/fashion")) do
      if i <= 6 then write(("%s/in/%s.png"):format(tmp, string.char(96 + i)), read(name)) end
    end
    write(tmp .. "/gradcam.sbatch", ([[
#!/bin/sh
#SBATCH --job-name=lumen-gradcam
#SBATCH --array=1-2
#SBATCH --cpus-per-task=1
export LUMEN_QUIET=1
exec %s batch recipes/gradcam.lua inputs=%s out=%s shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
]]):format(q(LUMEN), q(tmp .. "/in"), q(tmp .. "/out/array")))
    text, status = sh(("%s sbatch --parsable --chdir=%s -o %s %s"):format(env, q(sh("pwd"):match("[^\n]+")),
      q(tmp .. "/log/task_%a.log"), q(tmp .. "/gradcam.sbatch")))
    assert(status == 0, "sbatch failed: " .. text)
    local job = text:match("(%d+)")
    local states = wait_for(90, function()
      local s = sh(env .. "squeue -h -t all -j " .. job .. " -o %T")
      if s:find("PENDING") or s:find("RUNNING") or s:find("CONFIGURING") or s:find("COMPLETING") then return nil end
      return s
    end)
    assert(states, "the job array did not finish in 90 s: " .. sh(env .. "squeue -t all") .. read(tmp .. "/log/slurmctld.log"))
    local logs = read(tmp .. "/log/task_1.log") .. read(tmp .. "/log/task_2.log")
    local _, completed = states:gsub("COMPLETED", "")
    assert.equal(2, completed, states .. logs .. read(tmp .. "/log/slurmd.log"))
    assert.truthy(logs:find("batch: shard 1/2: 3 of 6 inputs: 3 done", 1, true), logs)
    assert.truthy(logs:find("batch: shard 2/2: 3 of 6 inputs: 3 done", 1, true), logs)

    -- The same files as one unsharded run into the same folder (the array's moved aside): outputs byte
    -- for byte, manifests equal in every field but the wall time and its checksum.
    local array = support.tree(tmp .. "/out/array")
    assert(os.rename(tmp .. "/out/array", tmp .. "/out/slurm"))
    text, status = sh(("LUMEN_QUIET=1 %s batch recipes/gradcam.lua inputs=%s out=%s"):format(q(LUMEN), q(tmp .. "/in"), q(tmp .. "/out/array")))
    assert(status == 0, text)
    local n = 0
    for _ in pairs(array) do n = n + 1 end
    assert.equal(6 * 4, n) -- gradcam.png, gradcam.npy, raw.npy, manifest.json each
    support.assert_same_runs(support.tree(tmp .. "/out/array"), array, "the Slurm array")
    text, status = sh(("%s report %s"):format(q(LUMEN), q(tmp .. "/out/array")))
    assert(status == 0 and text:find("(6 runs, 0 failed)", 1, true), text)
  end)
end)
