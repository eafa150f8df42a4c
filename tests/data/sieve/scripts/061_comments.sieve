# a comment
require "fileinto"; /* bracket
comment */
if /* here */ true { fileinto "Commented"; } # end
