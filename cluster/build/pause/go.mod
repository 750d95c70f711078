// The pod sandbox's program, standard library only.
module modelship.local/cluster/pause

go 1.26.0
