"""One client per upstream service: the portal's adapters at the edge. Each speaks its
service's HTTP API and nothing else; the pages never call HTTP themselves."""
