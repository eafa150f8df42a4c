require "fileinto";

fileinto "Never
