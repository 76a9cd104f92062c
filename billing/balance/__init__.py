"""The customer balance: a ledger per customer and currency (`models`), written only by
`services`, read by `selectors`; API views, admin and the invoice engine call them."""
