-- lumen.util: script arguments, progress bars, threads, manifests.
return function(lumen) end
