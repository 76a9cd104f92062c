"""Credit notes: full or partial credits against an issued invoice, with their own gapless
number series per reseller and year, PDF and email."""
