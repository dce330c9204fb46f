package contracts

// Product is a catalog entry: price and the stock inventory seeds when its bucket is
// empty.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Seed       int    `json:"seed"`
}

// Catalog is the fixed product list shared by order (prices), inventory (seed stock) and
// the load generator (what to order).
var Catalog = []Product{
	{SKU: "sku-1", Name: "NATS sticker", PriceCents: 250, Seed: 1_000_000},
	{SKU: "sku-2", Name: "Trace mug", PriceCents: 1_200, Seed: 1_000_000},
	{SKU: "sku-3", Name: "Span socks", PriceCents: 900, Seed: 1_000_000},
	{SKU: "sku-4", Name: "Collector hoodie", PriceCents: 4_500, Seed: 1_000_000},
	{SKU: "sku-5", Name: "Limited edition gopher", PriceCents: 9_900, Seed: 50},
	// sku-oos never has stock: orders for it exercise the out-of-stock path.
	{SKU: "sku-oos", Name: "Sold out poster", PriceCents: 1_500, Seed: 0},
}

// FindProduct returns the catalog entry for sku.
func FindProduct(sku string) (Product, bool) {
	for _, p := range Catalog {
		if p.SKU == sku {
			return p, true
		}
	}
	return Product{}, false
}

// Test cards (billing's documented decline rules).
const (
	// CardOK is always accepted.
	CardOK = "4242424242424242"
	// CardDeclined is always declined with CodePaymentDeclined.
	CardDeclined = "4000000000000002"
	// ChargeLimitCents: any charge above this amount is declined.
	ChargeLimitCents = 100_000
)
