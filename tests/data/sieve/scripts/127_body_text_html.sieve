require ["body", "fileinto"];
if body :text :contains "<b>" { fileinto "TagInText"; }
if body :text :contains "您的订单" { fileinto "OrderText"; }
