require ["body", "fileinto"];
if body :content "text/html" :contains "<b>" { fileinto "HtmlTag"; }
if body :content "text" :contains "订单" { fileinto "Order"; }
