-- Not a recipe: the sibling module control_get_contacts.lua requires.
return { double = function(x) return 2 * x end }
