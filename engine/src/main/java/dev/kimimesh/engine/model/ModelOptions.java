package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.RouterWeights;

/**
 * How a model is run: router-weight convention, KDA form, where routed experts live, and optional observers of
 * intermediate values (for golden checks and stats).
 *
 * @param experts null for experts computed in this process
 */
public record ModelOptions(RouterWeights routerWeights, KdaForm kdaForm, ExpertDispatch experts, Observer observer) {

    /** Sees intermediate values of a forward pass; tensors are only valid during the call. */
    public interface Observer {
        default void afterAttention(int layer, Tensor residual) {}

        default void afterLayer(int layer, Tensor residual) {}

        default void routed(int layer, Routing routing) {}
    }

    public static ModelOptions defaults() {
        return new ModelOptions(RouterWeights.UNBIASED, KdaForm.AUTO, null, null);
    }

    public ModelOptions withRouterWeights(RouterWeights r) {
        return new ModelOptions(r, kdaForm, experts, observer);
    }

    public ModelOptions withKdaForm(KdaForm f) {
        return new ModelOptions(routerWeights, f, experts, observer);
    }

    public ModelOptions withExperts(ExpertDispatch e) {
        return new ModelOptions(routerWeights, kdaForm, e, observer);
    }

    public ModelOptions withObserver(Observer o) {
        return new ModelOptions(routerWeights, kdaForm, experts, o);
    }
}
