-- placeholder: filled by the math ops work
return function(lumen) end
