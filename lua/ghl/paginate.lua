-- ghl.paginate: the pager's former name, kept for scripts and recipes that require it (ghl.client.paginate).
return require "ghl.client.paginate"
